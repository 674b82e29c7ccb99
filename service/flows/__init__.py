"""Orchestration: authenticate -> decide by policy -> record intent -> act -> record -> audit."""
