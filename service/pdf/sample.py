# mypy: disable-error-code="no-untyped-call"
# (pyHanko's pdf_utils writer and generic objects have no annotations)
"""A one-page PDF made with pyHanko's own writer: something to sign in tests and demonstrations."""

from __future__ import annotations

import io

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter


def sample_pdf(text: str = "koshin sample document") -> bytes:
    """An A4 page showing ``text`` (ASCII) in Helvetica; the content stream is left uncompressed."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    writer = PdfFileWriter()
    content = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 760 Td (" + safe + b") Tj ET"))
    font = generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Font"),
        generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
        generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
    })  # fmt: skip
    page = generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Page"),
        generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
        generic.NameObject("/Contents"): content,
        generic.NameObject("/Resources"): generic.DictionaryObject({
            generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): font}),
        }),
    })  # fmt: skip
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
