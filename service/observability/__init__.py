"""Metrics and logs that operators plug in: Prometheus exposition, JSON lines with a correlation id."""
