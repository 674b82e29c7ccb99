"""What relying parties read, made outside any request: CRLs (numbered, signed and stored by a publisher) and the
OCSP responder's status lookup."""
