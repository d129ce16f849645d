"""The engine: when each check runs (``scheduler``, on APScheduler as ``aps`` sets it
up), running it with a timeout in a worker (``runner``), the state machine per check
(``statemachine``), the table of checks that ties them together (``checktable``), the
live event hub (``events``), the maintenance windows in force, scheduled ones too
(``maintenance``), and the deploy gate's judgement of steady passes (``gate``).
It tells healing of results through the small ``Healing`` protocol, never importing it.

May import: ``vigil._config``, ``vigil._store``, ``vigil._api``, ``vigil._kit``."""
