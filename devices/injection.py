"""Moving a station-made key into a card without it ever being in clear outside a token.

1. At card manufacture a fresh AES-256 key-encryption key (KEK) is put into both tokens: on the station by
   the SO with C_CreateObject and CKA_TRUSTED (SoftHSM lets only the SO set TRUSTED, and only at creation; a
   generated or derived key cannot carry it), wrap-only; on the card, unwrap-only. Its value exists in this
   process's memory for that moment only, as a personalisation transport key does at a card factory.
2. The station generates the card key pair with SENSITIVE and WRAP_WITH_TRUSTED: only a TRUSTED key can
   wrap it (an untrusted wrapping key gets CKR_KEY_NOT_WRAPPABLE).
3. The station wraps it under the KEK (CKM_AES_KEY_WRAP_PAD), the card unwraps it as a sensitive,
   never-extractable signing key, and the station destroys its copy.

The injected key then reads SENSITIVE, not EXTRACTABLE, LOCAL false, ALWAYS_SENSITIVE false and
NEVER_EXTRACTABLE false: the PKCS#11 mark of an injected key, which the security suite checks.
"""

from __future__ import annotations

import secrets

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm import keys
from hsm.errors import HsmError, translated
from hsm.keys import KeyAlgorithm
from hsm.session import TokenSession, load_module
from hsm.uri import KeyRef

WRAP_MECHANISM = Mechanism.AES_KEY_WRAP_PAD
_PUBLIC_PARTS = {
    True: (Attribute.MODULUS, Attribute.PUBLIC_EXPONENT),
    False: (Attribute.EC_PARAMS, Attribute.EC_POINT),
}


def kek_label(card_token: str) -> str:
    return f"kek-{card_token}"


def provision_transport_key(module_path: str, station_label: str, station_so_pin: str, card: TokenSession) -> None:
    """Create a per-card KEK: TRUSTED wrap-only on the station (by its SO), unwrap-only on the card.

    No user session of this process may be open on the station (PKCS#11 keeps one login state per
    application, and the SO cannot log in while the user is)."""
    lib, lock = load_module(module_path)
    label = kek_label(card.token_label)
    value = bytearray(secrets.token_bytes(32))
    try:
        with lock:
            station = lib.get_token(token_label=station_label)
            with (
                translated(f"SO login to station {station_label!r}"),
                station.open(rw=True, so_pin=station_so_pin) as so,
            ):
                so.create_object(
                    {
                        Attribute.CLASS: ObjectClass.SECRET_KEY,
                        Attribute.KEY_TYPE: KeyType.AES,
                        Attribute.VALUE: bytes(value),
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,  # the SO cannot create private objects; SENSITIVE guards the value
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.TRUSTED: True,
                        Attribute.WRAP: True,
                        Attribute.UNWRAP: False,
                        Attribute.ENCRYPT: False,
                        Attribute.DECRYPT: False,
                        Attribute.LABEL: label,
                    }
                )
        with card.locked() as session, translated(f"store transport key on {card.token_label!r}"):
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: bytes(value),
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: True,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                    Attribute.LABEL: label,
                }
            )
    finally:
        value[:] = bytes(len(value))


def inject(station: TokenSession, card: TokenSession, label: str, algorithm: KeyAlgorithm) -> KeyRef:
    """Wrap the station's key ``label`` under the card's KEK, unwrap it on the card, destroy the station copy."""
    if not card.accepts_injected_keys:
        raise HsmError(f"token {card.token_label!r} does not accept injected keys (capability profile)")
    kek = kek_label(card.token_label)
    key_id = station.key_ref(label).key_id
    with station.locked() as session, translated(f"wrap {label!r} for {card.token_label!r}"):
        wrapping = session.get_key(object_class=ObjectClass.SECRET_KEY, label=kek)
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        wrapped = wrapping.wrap_key(private, mechanism=WRAP_MECHANISM)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        public_attributes = {a: public[a] for a in _PUBLIC_PARTS[algorithm.is_rsa]}
    with card.locked() as session, translated(f"unwrap {label!r} on {card.token_label!r}"):
        unwrapping = session.get_key(object_class=ObjectClass.SECRET_KEY, label=kek)
        unwrapping.unwrap_key(
            ObjectClass.PRIVATE_KEY,
            KeyType.RSA if algorithm.is_rsa else KeyType.EC,
            wrapped,
            mechanism=WRAP_MECHANISM,
            label=label,
            id=key_id,
            store=True,
            template=keys.injected_private_template(label, key_id),
        )
        template = keys.public_template(algorithm, label, key_id)
        template.pop(Attribute.MODULUS_BITS, None)  # a generation parameter, read-only on creation
        session.create_object(
            {
                **template,
                **public_attributes,
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: KeyType.RSA if algorithm.is_rsa else KeyType.EC,
            }
        )
    station.delete_key(label)
    return KeyRef(token=card.token_label, label=label, key_id=key_id)


def store_certificate(
    token: TokenSession, label: str, key_id: bytes, certificate_der: bytes, subject_der: bytes
) -> None:
    """Put the issued certificate on the token next to its key (CKO_CERTIFICATE, same CKA_ID)."""
    with token.locked() as session, translated(f"store certificate {label!r}"):
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: label,
                Attribute.ID: key_id,
                Attribute.SUBJECT: subject_der,
                Attribute.VALUE: certificate_der,
            }
        )
