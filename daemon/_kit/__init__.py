"""The kit: what any part may use and that knows nothing of vigil's model. Running
commands without a shell (``proc``), atomic files (``atomic``), masking secrets
(``redact``), a check's words made safe for a terminal (``visible``), ports and who
holds them (``ports``), following a file (``tail``), the pidfd and systemd D-Bus
watchers (``pidwatch``, ``unitwatch``), SHA-256 names without OpenSSL (``digest``),
platform folders (``paths``), folders and files for their owner alone (``private``),
structlog imported without the packages it would bring and vigil never uses
(``structlog_lean``, first of all), durations (``durations``), counts in words
(``words``), Nagios perfdata (``perfdata``) and handing freed memory back (``memory``).

May import: the standard library and third-party libraries only."""
