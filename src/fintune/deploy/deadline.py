"""A deadline for a request's headers (slowloris): uvicorn has none of its own.

uvicorn's httptools protocol is subclassed through its parser callbacks, which are httptools'
documented interface: the clock starts when a connection opens (and when a new request begins
on a kept-alive connection) and stops when the headers are complete; a client that has not
sent whole headers by then is disconnected. Bodies have their own limits (serve.max_body_bytes).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 protocol, closing connections whose headers take over ``header_timeout_s``."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline(seconds: float) -> type[Any]:
    """The protocol class for ``uvicorn.run(http=...)`` with a deadline of ``seconds``."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout_s": float(seconds)})
