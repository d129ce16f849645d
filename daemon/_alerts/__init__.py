"""Alerts and remediation: when to alert (``alerter``), the outbox and silences in
the state database (``outbox``), each sink's sender (``delivery``), the objectives' burn
alerts (``burns``), and problems fed back into the operators' backlog (``remediation``,
``backlogfile``).

May import: ``vigil._heal`` and the parts below it."""
