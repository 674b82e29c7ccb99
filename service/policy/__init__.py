"""The assurance-level policy engine: a pure ``decide()`` over regimes held as YAML data in profiles/policy/.

A regime is an ordered rule list; the first rule whose ``match`` fits a request decides it, and a request no
rule matches is refused (``DEFAULT-DENY``). Proposal regimes are the 2022 baseline plus a list of changes.
"""

from service.policy.engine import DEFAULT_RULE_ID, decide, rule_matches
from service.policy.errors import AssuranceUnmapped, PolicyError, RegimeInvalid, RegimeNotFound
from service.policy.model import (
    AssuranceLevel,
    Channel,
    Decision,
    Evidence,
    HolderState,
    Operation,
    PolicyRequest,
    Role,
)
from service.policy.regime import (
    DEFAULT_REGIME,
    Change,
    HolderMatch,
    InsertBeforeChange,
    Match,
    Regime,
    RemoveChange,
    ReplaceChange,
    Rule,
    available_regimes,
    load_regime,
)

__all__ = [
    "DEFAULT_REGIME",
    "DEFAULT_RULE_ID",
    "AssuranceLevel",
    "AssuranceUnmapped",
    "Change",
    "Channel",
    "Decision",
    "Evidence",
    "HolderMatch",
    "HolderState",
    "InsertBeforeChange",
    "Match",
    "Operation",
    "PolicyError",
    "PolicyRequest",
    "Regime",
    "RegimeInvalid",
    "RegimeNotFound",
    "RemoveChange",
    "ReplaceChange",
    "Role",
    "Rule",
    "available_regimes",
    "decide",
    "load_regime",
    "rule_matches",
]
