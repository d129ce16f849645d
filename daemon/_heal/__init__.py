"""Healing: the policy and the heals themselves (``healer``) and a service's runtime
record, its states and a heal's outcome (``healstate``).

May import: ``vigil._engine`` and the parts below it."""
