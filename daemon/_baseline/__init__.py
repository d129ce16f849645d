"""Baselines: what is normal for a series (a check's duration, one of its metrics) at
this hour of the day or week, learnt as results come, and how far a new 5-minute window
lies from it (``detector``); where a trend will cross a threshold (``forecast``); the
daemon's watch over every series, on a thread of its own (``watch``).

May import: ``vigil._engine`` and the parts below it."""
