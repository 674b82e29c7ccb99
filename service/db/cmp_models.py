"""CMP (RFC 4210) state: transactions and used sender nonces.

A transactionID is claimed once (its primary key) so a replayed or reused one is refused; a senderNonce is
used once. The CMP responder certificates are ordinary rows of the certificate table (profile
``cmp-responder``, one issuer each: service/protocols/cmp/responder.py); their keys live on the token.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class CmpTransaction(SQLModel, table=True):
    __tablename__ = "cmp_transaction"

    transaction_id: str = Field(primary_key=True, max_length=128)  # hex of the (at most 64-octet) transactionID
    profile: str = Field(max_length=32)
    kind: str = Field(max_length=8)  # ir | kur | rr | genm
    state: str = Field(max_length=16)  # waiting (for certConf) | confirmed | rejected | done
    sender: str = Field(max_length=64)  # the proofing event id (MAC) or the signer certificate's serial hex
    serial_hex: str | None = Field(default=None, max_length=40)  # the certificate issued or revoked
    answer_nonce: str | None = Field(default=None, max_length=128)  # our last senderNonce: certConf's recipNonce
    created_at: datetime
    updated_at: datetime


class CmpNonce(SQLModel, table=True):
    __tablename__ = "cmp_nonce"

    nonce: str = Field(primary_key=True, max_length=128)  # hex of a senderNonce that was accepted once
    created_at: datetime
