"""Objectives: each ``[slos.NAME]``'s SLI over its window, the error budget left, the
burn rates over the SRE workbook's windows and whether they call for a page or a ticket
(``burn``, ``objectives``), counted from the history's tiers.

May import: ``vigil._config``, ``vigil._store``, ``vigil._api``, ``vigil._kit``."""
