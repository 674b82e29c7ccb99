"""The what-if model's errors: one root, a leaf per thing that can be wrong with its input."""

from __future__ import annotations


class WhatIfError(Exception):
    """Root of the what-if model's errors."""


class ScenarioNotFound(WhatIfError):
    """No scenario file of that name."""


class ScenarioInvalid(WhatIfError):
    """A scenario, the assumptions or the routes do not validate, or a --set names no assumption."""


class RunDisagrees(WhatIfError):
    """``--run``: the live service decided a step otherwise than the model did from the same regime."""
