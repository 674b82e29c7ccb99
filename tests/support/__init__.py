"""Fixtures and helpers shared by the test packages; no test module imports another test module."""
