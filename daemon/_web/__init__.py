"""The HTTP surface: the server and its limits (``http``), connections waiting for their
request heads on one thread (``heads``), what each endpoint
answers (``api``), who may ask what (``access``: host names, the token, guessers),
starting and moving it (``surface``), ``/metrics`` (``metrics``), the status page
(``statuspage``, its data in ``statusdata``, the objectives' panel in ``slopanel``,
``status.css`` and ``status.js``) and badges (``badge``).

May import: ``vigil._alerts`` and the parts below it."""
