"""The state database: its schema, opening and setting aside (``database``), the
history's rollups and queries (``history``), counting a window exactly from its tiers
(``tally``), the maintenance windows kept there (``maintenance``), the records' shapes
(``records``), what callers queue (``store``, with ``batch``) and the one thread that
commits it (``writer``).

May import: ``vigil._api``, ``vigil._kit``."""
