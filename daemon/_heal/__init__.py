"""Healing: the policy and the heals themselves (``healer``), a service's runtime
record, its states and a heal's outcome (``healstate``), and the watches that hear of
a service's death at once (``watching``).

May import: ``vigil._engine`` and the parts below it."""
