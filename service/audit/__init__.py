"""The audit log's anchoring: checkpoints signed with the audit key, their schedule and the installation check."""
