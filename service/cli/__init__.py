"""The `koshin` command: what operators run."""
