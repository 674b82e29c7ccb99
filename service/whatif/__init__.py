"""``koshin whatif``: the counter load of a renewal wave under each policy regime, computed from the regimes' own
rules (``decide()``), not from a table restating them; data in profiles/whatif/. Pure: no database, no token."""
