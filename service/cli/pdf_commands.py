"""``koshin sign-pdf`` and ``koshin verify-pdf``: PAdES signatures with a holder key on its token (pyHanko)."""

from __future__ import annotations


def sign_pdf() -> None:
    """Sign a PDF with a holder's signature key on its token (work in progress)."""
    raise NotImplementedError


def verify_pdf() -> None:
    """Validate a signed PDF against the koshin root (work in progress)."""
    raise NotImplementedError
