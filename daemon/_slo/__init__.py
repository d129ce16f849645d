"""Objectives: each ``[slos.NAME]``'s SLI over its window, the error budget left, the
burn rates over the SRE workbook's windows and whether they call for a page or a ticket
(``burn``, ``objectives``), counted from the history's tiers; the daemon's watch that
counts them again every ``slo_interval`` (``watch``).

May import: ``vigil._engine`` and the parts below it."""
