"""``koshin sign-pdf`` and ``koshin verify-pdf``: PAdES signatures with a holder key on its token (pyHanko).

The PIN comes from ``--pin-file`` or a hidden prompt, never from the command line. A token that is a
credential of a device stored under KOSHIN_HOME (``koshin devices make``: tokens ``<device>-<credential>``)
is opened through that device, so its persisted PIN failure counter counts and locks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from cryptography import x509

from devices.capabilities import load_token_profile
from devices.device import Device
from hsm import TokenSession
from service.cli.context import console, print_json
from service.cli.device_commands import embedded_home
from service.settings import Settings

if TYPE_CHECKING:
    from service.pdf.verification import SignatureReport

Url = Annotated[str | None, typer.Option(help="Base URL of the koshin service [default: KOSHIN_PUBLIC_BASE_URL].")]


def _quiet_pyhanko() -> None:
    """pyHanko logs every validation failure with a traceback; the commands report results themselves."""
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).addHandler(logging.NullHandler())


def _read_pin(pin_file: Path | None, token_label: str) -> str:
    if pin_file is not None:
        return pin_file.read_text(encoding="utf-8").rstrip("\r\n")
    return str(typer.prompt(f"PIN of token {token_label}", hide_input=True))


def device_credential(settings: Settings, module: str, token_label: str) -> tuple[Device, str] | None:
    """The stored device and credential whose token this is, if any (embedded module only)."""
    folder = settings.home / "secrets" / "devices"
    for cut in (i for i, ch in enumerate(token_label) if ch == "-"):
        name, credential = token_label[:cut], token_label[cut + 1 :]
        record = folder / f"{name}.json"
        if record.exists():
            profile = load_token_profile(json.loads(record.read_text())["kind"])
            if credential in profile.credentials:
                return Device(module, name, profile, settings.home / "devices"), credential
    return None


def _open_token(module: str | None, token_label: str, pin_file: Path | None) -> TokenSession:
    if module is None:
        settings, _, embedded = embedded_home()
        found = device_credential(settings, embedded, token_label)
        pin = _read_pin(pin_file, token_label)
        if found is not None:
            device, credential = found
            return device.open(credential, pin)
        return TokenSession(embedded, token_label, pin, can_generate_keys=False)
    return TokenSession(module, token_label, _read_pin(pin_file, token_label), can_generate_keys=False)


def sign_pdf(
    source: Annotated[Path, typer.Argument(help="The PDF to sign.", exists=True, dir_okay=False)],
    target: Annotated[Path, typer.Argument(help="Where to write the signed PDF.", dir_okay=False)],
    token: Annotated[str, typer.Option(help="Label of the holder's token, e.g. <card>-signature.")],
    module: Annotated[str | None, typer.Option(help="PKCS#11 module [default: the embedded SoftHSM].")] = None,
    key_label: Annotated[str | None, typer.Option(help="Label of the signing key [default: found].")] = None,
    cert: Annotated[Path | None, typer.Option(help="Signer certificate (PEM) [default: from the token].")] = None,
    chain: Annotated[Path | None, typer.Option(help="Issuing CA and root (PEM) [default: fetched].")] = None,
    url: Url = None,
    pin_file: Annotated[Path | None, typer.Option(help="File holding the PIN [default: prompt].")] = None,
    ltv: Annotated[
        bool, typer.Option(help="PAdES B-LT: a signature time-stamp, and OCSP/CRL fetched now embedded.")
    ] = False,
    tsa: Annotated[
        str | None, typer.Option(help="RFC 3161 TSA URL for the signature time-stamp [default with --ltv: {url}/tsa].")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Reason recorded in the signature.")] = None,
) -> None:
    """Sign a PDF with a holder's signature key on its token (PAdES, certificate chain embedded)."""
    from service.pdf.chain import build_chain, fetch_published, load_pem_bundle  # pyHanko: loaded when used
    from service.pdf.signing import SigningRequest, require_document_signing, sign_pdf_bytes
    from service.pdf.timestamp import koshin_tsa_url
    from service.pdf.token_signer import signing_key_label, token_certificate
    from service.pdf.verification import embedded_revocation_counts

    _quiet_pyhanko()
    certificate = x509.load_pem_x509_certificate(cert.read_bytes()) if cert is not None else None
    if certificate is not None:
        require_document_signing(certificate)  # refused before the token or its PIN is asked for
    pool = load_pem_bundle(chain) if chain is not None else None
    with _open_token(module, token, pin_file) as session:
        label = signing_key_label(session, certificate, key_label)
        certificate = certificate or token_certificate(session, label)
        require_document_signing(certificate)
        if pool is None:
            pool = fetch_published(url or Settings().public_base_url)
        tsa_url = tsa or (koshin_tsa_url(url or Settings().public_base_url) if ltv else None)
        signer_chain = build_chain(certificate, pool)
        request = SigningRequest(session, label, certificate, signer_chain, ltv=ltv, reason=reason, tsa_url=tsa_url)
        signed = sign_pdf_bytes(source.read_bytes(), request)
    target.write_bytes(signed)
    ocsps, crls = embedded_revocation_counts(signed)
    level = "B-B"
    if tsa_url is not None:
        level = (
            f"B-LT: time-stamped by {tsa_url}; {ocsps} OCSP responses, {crls} CRLs embedded"
            if ltv
            else (f"B-T: time-stamped by {tsa_url}")
        )
    console.print(
        f"signed {target} with key {label!r} on {token!r} (certificate {certificate.serial_number:040x}; {level})"
    )


def verify_pdf(
    source: Annotated[Path, typer.Argument(help="The signed PDF.", exists=True, dir_okay=False)],
    trust: Annotated[Path | None, typer.Option(help="The koshin root (PEM) [default: fetched, not pinned].")] = None,
    chain: Annotated[Path | None, typer.Option(help="Extra CA certificates (PEM) for path building.")] = None,
    url: Url = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Validate the PDF's signatures against the koshin root; exit 1 unless every signature is valid."""
    from service.pdf.chain import fetch_published, load_pem_bundle, published_root  # pyHanko: loaded when used
    from service.pdf.verification import verify_pdf_bytes

    _quiet_pyhanko()
    others = load_pem_bundle(chain) if chain is not None else []
    if trust is not None:
        root = x509.load_pem_x509_certificate(trust.read_bytes())
        anchor = str(trust)
    else:
        base = url or Settings().public_base_url
        published = fetch_published(base)
        root, others = published_root(published), [*others, *published]
        anchor = f"fetched from {base} (not pinned: pass --trust)"
    reports = verify_pdf_bytes(source.read_bytes(), root, others)
    if as_json:
        print_json({"trust_anchor": anchor, "signatures": [r.as_dict() for r in reports]})
    else:
        console.print(f"trust anchor: {root.subject.rfc4514_string()} ({anchor})")
        for report in reports:
            _print_report(report)
    if not all(r.valid for r in reports):
        raise typer.Exit(1)


def _print_report(r: SignatureReport) -> None:
    a = r.attributes
    rows = [
        ("signature", f"{r.field_name}: {'VALID' if r.valid else 'INVALID'}"),
        ("signer", f"{r.signer_subject} (serial {r.signer_serial})"),
        ("name", a.name), ("sex", a.sex_text), ("date of birth", a.birth_text), ("address", a.address),
        ("signing time", f"{r.signing_time.isoformat()} (claimed by the signer)" if r.signing_time else None),
        ("time-stamp", _stamp_text(r)),
        ("integrity", f"{r.integrity} ({r.coverage})"),
        ("trust", "trusted" if r.trusted else f"NOT trusted ({r.trust_problem})"),
        ("revocation", f"{r.revocation} ({r.revocation_source}{_moment_text(r)})"
         + (f", revoked {r.revoked_at.isoformat()} ({r.revocation_reason})" if r.revoked_at else "")),
        ("usage", "; ".join(r.usage_problems) if r.usage_problems else "document signing allowed"),
    ]  # fmt: skip
    for key, value in rows:
        console.print(f"  {key + ':':15} {value if value is not None else '-'}")


def _stamp_text(r: SignatureReport) -> str | None:
    t = r.timestamp
    if t is None:
        return None
    return f"{t.time.isoformat()} by {t.tsa} ({'valid' if t.valid else f'INVALID: {t.problem}'})"


def _moment_text(r: SignatureReport) -> str:
    if r.revocation_judged_at is None:
        return ""
    what = "the time-stamp" if r.revocation_moment == "time-stamp" else "the signer's claimed time"
    return f", judged at {what} {r.revocation_judged_at.isoformat()}"
