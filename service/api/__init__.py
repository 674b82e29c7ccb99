"""The REST API: thin routes over the flows; the only package that knows HTTP."""
