"""koshin's service layer: settings, storage, the embedded default's bootstrap and the operator commands."""
