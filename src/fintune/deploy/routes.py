"""The server's routes, one router per concern, and its error handlers.

- :func:`scoring_router`: ``/v1/predict`` and ``/v1/explain`` (classification and regression runs);
- :func:`operations_router`: ``/healthz``, ``/readyz`` and ``/metrics``, on the event loop, never
  behind model work;
- generation runs get OpenAI's chat API from :mod:`fintune.deploy.chat_api`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fintune.deploy.metrics import ServerMetrics
from fintune.deploy.schemas import (
    ErrorResponse, ExplainRequest, ExplainResponse, PredictRequest, PredictResponse,
)
from fintune.deploy.service import Service
from fintune.errors import FintuneError

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
    503: {"model": ErrorResponse}}


def scoring_router(service: Service, require_key: Callable[..., Any]) -> APIRouter:
    """Labels, probabilities and explanations, behind the API key."""
    router = APIRouter(dependencies=[Depends(require_key)], responses=ERRORS)

    @router.post("/v1/predict", response_model=PredictResponse, response_model_exclude_none=True)
    async def predict(request: PredictRequest) -> PredictResponse:
        """Labels and class probabilities (calibrated; the model's saved threshold applies)."""
        return await service.predict(request)

    @router.post("/v1/explain", response_model=ExplainResponse)
    async def explain(request: ExplainRequest) -> ExplainResponse:
        """Signed contributions of words (integrated gradients) or columns (occlusion)."""
        return await service.explain(request)

    return router


def operations_router(service: Service, metrics: ServerMetrics) -> APIRouter:
    """Health, readiness and Prometheus metrics: open, answered at once under any load."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        """The model is loaded and the batcher runs."""
        if service.ready:
            return JSONResponse({"status": "ready", "model": service.name})
        return JSONResponse({"error": "not ready"}, status_code=503)

    @router.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, batch sizes, predicted classes."""
        return Response(metrics.render(), media_type=metrics.content_type)

    return router


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal and fault in the documented shape ``{"error": ..., ...}``."""
    @app.exception_handler(StarletteHTTPException)  # FastAPI's own and starlette's (a body that does not parse)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body" for what json cannot read beyond
            # syntax (a 5,000-digit number exceeds Python's int digit limit): say what it was.
            return JSONResponse({"error": f"invalid request: the JSON body cannot be read ({exc.__cause__})"},
                                status_code=422)
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request: " + "; ".join(problems[:5])}, status_code=422)

    @app.exception_handler(FintuneError)
    async def bad_input(_: Request, exc: FintuneError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse({"error": "invalid request: the JSON body is nested too deeply"}, status_code=422)

    @app.exception_handler(UnicodeError)
    async def not_text(_: Request, exc: UnicodeError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: text that is not valid UTF-8 ({exc.reason})"},
                            status_code=422)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        # The documented shape even for a fault of ours; the traceback stays in the server's log.
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server's log has the details"},
                            status_code=500)
