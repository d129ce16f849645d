"""The HTTP surface as the config wants it: started, moved to a new address at a reload,
stopped. The server's module (and http.server with it) is imported only when there is an
address to serve."""

from __future__ import annotations

from typing import Any

from vigil._web.api import WebApi


class HttpSurface:
    """The server as the config wants it: started, moved to a new address at a reload
    (a new token applies at once), stopped. The server's module (and http.server) is
    imported only when there is an address to serve."""

    def __init__(self, api: WebApi) -> None:
        self.api = api
        self.server: Any = None
        self.address: tuple[str, int] | None = None

    def apply(self, address: tuple[str, int] | None, token: str) -> None:
        self.api.token = token
        if address == self.address and (self.server is not None or address is None):
            return
        self.close()
        self.address = address
        if address is not None:
            from vigil._web import http as _http  # only when serving

            self.server = _http.start(address, self.api)

    def close(self) -> None:
        if self.server is not None:
            self.server.stopping.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
