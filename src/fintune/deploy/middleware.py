"""ASGI middleware of the server: the body-size limit and the per-endpoint measurements."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from fintune.deploy.limits import UPLOAD_PATH, limit_error
from fintune.deploy.metrics import ServerMetrics


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with a 413 (``uploads`` on the file upload endpoint),
    by Content-Length or while reading them."""

    def __init__(self, app: Any, max_bytes: int, uploads: int | None = None) -> None:
        self.app, self.max_bytes, self.uploads = app, max_bytes, uploads

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self.uploads is not None and scope.get("path") == UPLOAD_PATH
        limit, name = (self.uploads, "max_upload_bytes") if upload else (self.max_bytes, "max_body_bytes")
        assert limit is not None
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = limit_error(413, name, limit, int(declared), "request body too large")
            await JSONResponse(error.detail, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # a chunked body that declared no length
                raise limit_error(413, name, limit, None, "request body too large")
            return message

        await self.app(scope, counted, send)


class Measure:
    """Counts every response by endpoint and status and times it (plain ASGI: no per-request
    task or body copy, as a ``BaseHTTPMiddleware`` would add)."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "other"), status[0], time.perf_counter() - started)
