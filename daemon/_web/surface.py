"""The HTTP surface as the config wants it: started, moved to a new address at a reload,
stopped. The server's module (and http.server with it) is imported only when there is an
address to serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil._web.access import Access
    from vigil._web.api import WebApi


class HttpSurface:
    """The server as the config wants it: started, moved to a new address at a reload
    (a new token applies at once), stopped. The web stack (the endpoints, the page, the
    server and http.server) is made, and so imported, only once there is an address to
    serve: a daemon with ``http = ""`` does not hold it in memory."""

    def __init__(self, make_api: Callable[[], WebApi]) -> None:
        self.make_api = make_api
        self.api: WebApi | None = None
        self.server: Any = None
        self.address: tuple[str, int] | None = None

    def apply(self, address: tuple[str, int] | None, access: Access | None) -> None:
        """Serve at ``address`` (None: no HTTP) to whom ``access`` says (None only with
        no address and no endpoints made yet)."""
        if self.api is None and address is not None:
            self.api = self.make_api()
        if self.api is not None and access is not None:
            self.api.access = access
        if address == self.address and (self.server is not None or address is None):
            return
        self.close()
        self.address = address
        if address is not None and self.api is not None:
            from vigil._web import http as _http

            self.server = _http.start(address, self.api)

    def close(self) -> None:
        if self.server is not None:
            self.server.stopping.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
