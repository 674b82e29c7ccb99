"""Alembic migrations of koshin's schema, applied automatically when the database is opened."""
