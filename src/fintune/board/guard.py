"""What stands between the board and a foreign web page: the Host header, the Origin of
state-changing requests, and a limit on wrong passwords.

DNS rebinding: a page on ``rebind.evil.example`` re-points its name to 127.0.0.1 and posts to
the board as a same-origin page; the only trace is the ``Host`` header, which names the evil
domain. A browser cannot send a foreign Host, so the board answers only to the hosts it is
reached by (loopback names, the host it binds, this machine's names, IP literals when it
binds every interface, and ``allowed_hosts``). A page on another loopback port (another
local web app) is a different origin: a POST whose ``Origin`` differs from the board's own is
refused. Wrong passwords are counted per client address; past :data:`LOGIN_ATTEMPTS` in
:data:`LOGIN_WINDOW_S` seconds, logins are refused with 429 until the window passes.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so the board's streaming and
websocket traffic passes through untouched.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
EVERY_INTERFACE = frozenset({"0.0.0.0", "::", ""})
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_S = 60.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the board on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The host part of a ``Host`` header (``name:port``, ``[v6]:port``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def reachable_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a browser may use to reach a board bound to ``bind``."""
    names = set(LOOPBACK_NAMES) | {h.lower() for h in extra}
    if bind not in EVERY_INTERFACE:
        names.add(_host_name(bind))
    if not is_loopback(bind):  # reached over the network: by this machine's own names too
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


class BoardGuard:
    """ASGI middleware: Host check, same-origin check of state-changing requests, login limit."""

    def __init__(self, app: Callable[..., Awaitable[None]], bind: str = "127.0.0.1",
                 allowed_hosts: Iterable[str] = (), attempts: int = LOGIN_ATTEMPTS,
                 window_s: float = LOGIN_WINDOW_S) -> None:
        self.app = app
        self.hosts = reachable_hosts(bind, allowed_hosts)
        self.any_ip = bind in EVERY_INTERFACE  # IP literals cannot be rebound: any of them will do
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_name(headers.get("host", ""))
        if not self._host_allowed(host):
            await self._refuse(scope, send, 421, f"this board does not answer to host '{host}' (DNS rebinding "
                               "protection); open it by the address it was started on, or start it with "
                               "--allowed-host NAME")
            return
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        if origin and (scope["type"] == "websocket" or method not in SAFE_METHODS):
            # Same origin: the page's own scheme://host:port is what the browser sent as Host.
            if urlsplit(origin).netloc.lower() != headers.get("host", "").strip().lower():
                await self._refuse(scope, send, 403, "a request from another web page (origin "
                                   f"{origin!r}) may not change anything on this board")
                return
        if scope["type"] == "http" and method == "POST" and scope.get("path", "").rstrip("/") == "/login":
            await self._login(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, host: str) -> bool:
        return host in self.hosts or (self.any_ip and _is_ip(host))

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        with self._lock:
            recent = self._failures[client]
            while recent and now - recent[0] > self.window_s:
                recent.popleft()
            blocked = len(recent) >= self.attempts
            wait = self.window_s - (now - recent[0]) if blocked else 0.0
        if blocked:
            await self._refuse(scope, send, 429, f"{self.attempts} wrong passwords in {self.window_s:.0f} s from "
                               f"this address; try again in {wait:.0f} s", retry_after=wait)
            return

        async def counting(message: dict[str, Any]) -> None:
            # Gradio answers a wrong password with 400 (401 in other versions): count it.
            if message["type"] == "http.response.start" and message["status"] in (400, 401, 403):
                with self._lock:
                    self._failures[client].append(time.monotonic())
            await send(message)

        await self.app(scope, receive, counting)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, message: str, retry_after: float = 0.0) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if retry_after:
            headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
