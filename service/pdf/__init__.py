"""Relying-party use of the signature certificate: PAdES signatures made with a holder key on its token
(pyHanko's PKCS#11 signer), and their validation against the koshin root with the JPKI attributes shown."""
