"""Actors for tests that call the flows directly, without an API token."""

from __future__ import annotations

from datetime import UTC, datetime

from service.db.registry_models import Actor

OPERATOR = Actor(name="operator", role="ca_operator", token_sha256="", created_at=datetime.now(UTC))
