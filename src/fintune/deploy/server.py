"""``fintune serve``: the model behind FastAPI, micro-batched, limited, logged and measured.

Endpoints: ``POST /v1/predict``, ``POST /v1/explain`` (classification and regression runs),
``POST /v1/chat/completions`` (generation runs: OpenAI's chat API, see
:mod:`fintune.deploy.chat_api`), ``GET /healthz``, ``GET /readyz``, ``GET /metrics``
(Prometheus) and the OpenAPI docs at ``/docs``. Every refusal is a 4xx
(or 503) with a JSON body ``{"error": ..., "limit": ...}`` that says what to change.

Model work never runs on the event loop: predictions go through the micro-batcher's thread,
explanations through a bounded pool of their own (``serve.explain_queue``; beyond it, 503
with ``Retry-After``), so ``/healthz`` and ``/readyz`` answer at once under any load.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fintune.config import ServeConfig
from fintune.console import console
from fintune.data import Examples
from fintune.deploy.batcher import MicroBatcher
from fintune.deploy.docs import add_offline_docs
from fintune.deploy.limits import limit_error
from fintune.deploy.metrics import ServerMetrics
from fintune.deploy.predlog import PredictionLog, Record, input_hash, sketch
from fintune.errors import FintuneError
from fintune.evaluation.explain import ON_EMBEDDINGS
from fintune.predictors import FintuneModel
from fintune.models.onnx import OnnxModel
from fintune.tasks import task_of

API_KEY_HEADER = "X-API-Key"
EXPLAIN_RETRY_S = 2  # what Retry-After says when the explanation queue is full


def _utf8(text: str) -> str:
    # JSON escapes can spell lone surrogates ("\\ud800"), which are not text: a 422, not a 500.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not "
                         "valid text") from None
    return text


Text = Annotated[str, AfterValidator(_utf8)]
Scalar = Text | int | float | bool | None


class PredictRequest(BaseModel):
    """Either ``texts`` or ``rows`` (objects keyed by the training data's column names)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[Text] | None = Field(None, examples=[["$AAPL beats on revenue, raises guidance"]])
    rows: list[dict[Text, Scalar]] | None = Field(None, examples=[[{"income": 52000, "purpose": "car"}]])

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.texts is None) == (self.rows is None):
            raise ValueError("send exactly one of 'texts' (a list of strings) or 'rows' (a list of objects)")
        return self


class ExplainRequest(BaseModel):
    """One ``text`` or one ``row``."""

    model_config = ConfigDict(extra="forbid")
    text: Text | None = None
    row: dict[Text, Scalar] | None = None

    @model_validator(mode="after")
    def _one_input(self) -> ExplainRequest:
        if (self.text is None) == (self.row is None):
            raise ValueError("send exactly one of 'text' or 'row'")
        return self


class Prediction(BaseModel):
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None  # regression
    truncated: bool | None = Field(None, description="the input is longer than the model reads (model.max_length "
                                   "tokens) and was scored on its beginning only")


class PredictResponse(BaseModel):
    request_id: str
    model: str
    predictions: list[Prediction]


class Attribution(BaseModel):
    part: str
    score: float


class WindowShare(BaseModel):
    window: int
    start: int
    weight: float
    drop: float


class ExplainResponse(BaseModel):
    label: str
    probability: float
    method: str
    attributions: list[Attribution]
    windows: list[WindowShare] = Field(default_factory=list, description="long documents: each window's "
                                       "pooling weight and the drop in probability without it")


class ErrorResponse(BaseModel):
    error: str
    limit: str | None = None
    allowed: int | None = None
    got: int | None = None


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with a 413, by Content-Length or while reading them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = limit_error(413, "max_body_bytes", self.max_bytes, int(declared), "request body too large")
            await JSONResponse(error.detail, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a chunked body that declared no length
                raise limit_error(413, "max_body_bytes", self.max_bytes, None, "request body too large")
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


class Service:
    """What the endpoints call: validation against the limits, scoring through the batcher,
    logging, and the explainer (a separate torch copy, loaded on first use)."""

    def __init__(self, model: FintuneModel, cfg: ServeConfig, name: str, log: PredictionLog | None,
                 explainer: Callable[[], FintuneModel] | None, metrics: ServerMetrics) -> None:
        self.model, self.cfg, self.name, self.log, self.metrics = model, cfg, name, log, metrics
        self._explainer_factory, self._explainer, self._explain_lock = explainer, None, threading.Lock()
        # captum hooks the embedding layer: one explanation at a time, on a thread of its own.
        self._explain_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explainer")
        self._explain_pending = 0
        self.hash_key = _secret(cfg.log.hash_secret_env)
        self.batcher: MicroBatcher[Examples] = MicroBatcher(self._score, cfg.max_batch_size, cfg.max_wait_ms,
                                                        metrics.batch_sizes.observe)
        self.ready = False

    # -- input

    def examples(self, request: PredictRequest) -> tuple[Examples, pd.DataFrame, list[str | dict]]:
        """Check the limits and turn the request into model input, as ``fintune predict`` would."""
        items: list[Any] = request.texts if request.texts is not None else request.rows  # type: ignore[assignment]
        if not items:
            raise HTTPException(422, {"error": "the request holds no texts or rows"})
        if len(items) > self.cfg.max_texts:
            raise limit_error(422, "max_texts", self.cfg.max_texts, len(items), "too many texts or rows in one request")
        longest = max(_longest_string(item) for item in items)
        if longest > self.cfg.max_text_chars:
            raise limit_error(422, "max_text_chars", self.cfg.max_text_chars, longest, "text too long")
        if request.texts is not None:
            column = self.model.data_config.text_column
            if column is None or self.model.features is not None:
                raise HTTPException(422, {"error": "this model reads table rows: send 'rows' with the columns "
                                                   f"{', '.join(self.model.data_config.feature_columns or [])}"})
            frame = pd.DataFrame({column: request.texts})
        else:
            frame = pd.DataFrame(request.rows)
        examples = self.model.examples_of(frame, "request")
        if self.model.features is not None:
            self.model.inputs(examples)  # unusable values fail this request alone, before batching
        return examples, frame, items

    # -- scoring (on the batcher's thread)

    def _score(self, parts: list[Examples]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        texts = [t for e in parts for t in e.texts]
        features = [e.features for e in parts if e.features is not None]
        # A text-pair model reads each row's second text (the target) too.
        pairs = [p for e in parts for p in e.pairs] if parts[0].pairs is not None else None
        merged = Examples(texts, None, None, "request",
                          pd.concat(features, ignore_index=True) if features else None, pairs=pairs)
        out, vectors = self.model.scores(merged, self.cfg.max_batch_size, with_vectors=self.log is not None)
        results, start = [], 0
        for part in parts:
            stop = start + len(part)
            results.append((out[start:stop], None if vectors is None else vectors[start:stop]))
            start = stop
        return results

    async def predict(self, request: PredictRequest) -> PredictResponse:
        examples, frame, items = self.examples(request)
        out, vectors = await self.batcher.submit(examples, len(examples))
        columns = self.model.prediction_columns(out, frame)
        request_id = uuid.uuid4().hex
        predictions = self._predictions(out, columns)
        flags = self.model.truncated(examples)
        if flags is not None:
            for p, flag in zip(predictions, flags, strict=True):
                p.truncated = bool(flag)
            self.metrics.truncated.inc(int(flags.sum()))
        if self.log is not None:
            self._log(request_id, items, examples, predictions, vectors)
        for p in predictions:
            if p.label is not None:
                self.metrics.predicted.labels(label=p.label).inc()
        return PredictResponse(request_id=request_id, model=self.name, predictions=predictions)

    def _predictions(self, out: np.ndarray, columns: dict[str, Any]) -> list[Prediction]:
        if task_of(self.model.task).answer == "value":
            return [Prediction(value=float(v)) for v in out]
        names = self.model.label_names or []
        return [Prediction(label=label, confidence=float(row[names.index(label)]),
                           probabilities={n: float(p) for n, p in zip(names, row, strict=True)})
                for label, row in zip(columns["predicted_label"], out, strict=True)]

    def _log(self, request_id: str, items: list[Any], examples: Examples, predictions: list[Prediction],
             vectors: np.ndarray | None) -> None:
        sketches = sketch(vectors) if vectors is not None and len(vectors) else [None] * len(items)
        assert self.log is not None
        self.log.write([Record(request_id, input_hash(item, self.hash_key), len(text), None, p.label, p.confidence, p.value,
                               s, text) for item, text, p, s in zip(items, examples.texts, predictions, sketches,
                                                                     strict=True)])

    # -- explanations

    async def explain(self, request: ExplainRequest) -> ExplainResponse:
        """Run the explanation in the bounded pool; a full queue answers 503 with Retry-After."""
        if self._explain_pending >= self.cfg.explain_queue:
            raise HTTPException(503, {"error": f"{self._explain_pending} explanations are running or waiting; "
                                               f"retry in {EXPLAIN_RETRY_S} s", "limit": "explain_queue",
                                      "allowed": self.cfg.explain_queue},
                                headers={"Retry-After": str(EXPLAIN_RETRY_S)})
        self._explain_pending += 1  # on the event loop's thread: no lock needed
        try:
            return await asyncio.get_running_loop().run_in_executor(self._explain_pool, self._explain, request)
        finally:
            self._explain_pending -= 1

    def close(self) -> None:
        self._explain_pool.shutdown(wait=False, cancel_futures=True)

    def _explain(self, request: ExplainRequest) -> ExplainResponse:
        from fintune.evaluation.explain import explain

        if self.model.explanation_method is None:
            raise HTTPException(422, {"error": "explanations are available for classification models with an "
                                               "encoder or features (not causal LMs)"})
        predict = PredictRequest(texts=[request.text]) if request.text is not None else PredictRequest(rows=[request.row])
        examples, frame, _ = self.examples(predict)
        with self._explain_lock:  # captum hooks the embedding layer: one explanation at a time
            model = self._explaining_model()
            result = explain(model, examples, 0, frame)
        return ExplainResponse(label=result.label, probability=result.probability,
                               method=model.explanation_method,
                               attributions=[Attribution(part=p, score=s) for p, s in result.parts],
                               windows=[WindowShare(**w) for w in result.windows])

    def _explaining_model(self) -> FintuneModel:
        if self._explainer is None:
            if self._explainer_factory is None:
                raise HTTPException(422, {"error": "explanations of text need the run's torch model, and this "
                                                   "server has none: serve the run folder, not a copied export"})
            self._explainer = self._explainer_factory()
        return self._explainer


def _longest_string(item: str | dict) -> int:
    if isinstance(item, str):
        return len(item)
    return max((len(v) for v in item.values() if isinstance(v, str)), default=0)


def create_app(model: FintuneModel, cfg: ServeConfig, *, name: str = "fintune", log_path: Path | None = None,
               api_key: str | None = None, explainer: Callable[[], FintuneModel] | None = None,
               model_path: Path | None = None) -> FastAPI:
    """The FastAPI app for ``model``; ``api_key`` None leaves the endpoints open.

    ``model_path`` (the served folder) goes into the prediction log, so ``fintune monitor``
    scores its reference with the same model that produced the logged vectors.
    """
    metrics = ServerMetrics(model.label_names)
    if explainer is None and model.explanation_method == "occlusion":
        explainer = lambda: model  # noqa: E731 - occlusion only predicts, so the served model will do
    log = None
    if cfg.log.enabled and log_path is not None:
        log = PredictionLog(log_path, cfg.log.raw_text,
                            {"model": str(Path(model_path).resolve()) if model_path else "", "name": name})
    service = Service(model, cfg, name, log, explainer, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.batcher.start()
        service.ready = True
        yield
        # uvicorn has let in-flight requests finish by now; drain the batcher and the log.
        service.ready = False
        await service.batcher.stop()
        service.close()
        if log is not None:
            log.close()

    # docs_url=None: /docs is served below from the installed Swagger UI files, not a CDN.
    app = FastAPI(title="fintune", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=f"Predictions of the fintune model '{name}' ({model.kind}, {model.task}).")
    add_offline_docs(app)
    app.state.service = service
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="required when the server was started with an API key")

    async def require_key(given: str | None = Security(key_header)) -> None:
        if api_key is None:
            return
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, {"error": f"missing or wrong API key (header {API_KEY_HEADER})"})

    errors = {401: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
              503: {"model": ErrorResponse}}

    _add_model_routes(app, service, metrics, require_key, errors)

    # Health, readiness and metrics run on the event loop and never wait behind model work.
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        """The model is loaded and the batcher runs."""
        if service.ready:
            return JSONResponse({"status": "ready", "model": name})
        return JSONResponse({"error": "not ready"}, status_code=503)

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, batch sizes, predicted classes."""
        return Response(metrics.render(), media_type=metrics.content_type)

    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)  # refuses before the body is parsed

    app.add_middleware(Measure, metrics=metrics)  # added last, so outermost: 413s are counted too

    _add_error_handlers(app)
    return app


def _add_model_routes(app: FastAPI, service: Service, metrics: ServerMetrics, require_key: Callable[..., Any],
                      errors: dict[int | str, dict[str, Any]]) -> None:
    """What the model answers: /v1/predict and /v1/explain for classification and regression
    runs, OpenAI's chat API for generation runs (the predictor class says which)."""
    model = service.model
    if model.servable is None:
        @app.post("/v1/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=errors,
                  dependencies=[Depends(require_key)])
        async def predict(request: PredictRequest) -> PredictResponse:
            """Labels and class probabilities (calibrated; the model's saved threshold applies)."""
            return await service.predict(request)

        @app.post("/v1/explain", response_model=ExplainResponse, responses=errors,
                  dependencies=[Depends(require_key)])
        async def explain(request: ExplainRequest) -> ExplainResponse:
            """Signed contributions of words (integrated gradients) or columns (occlusion)."""
            return await service.explain(request)
    if model.chats is None:
        from fintune.deploy.chat_api import ChatService, add_chat_routes

        chat = ChatService(model, service.cfg, service.name, service.log, service.hash_key,
                           lambda _: metrics.predicted.labels(label="(generated)").inc())
        add_chat_routes(app, chat, require_key, errors)


def _add_error_handlers(app: FastAPI) -> None:
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


def model_folder(run: Path, onnx: bool) -> Path:
    """The folder to serve: the run's model, or its ONNX export (int8 preferred)."""
    if not onnx:
        return run
    for name in ("onnx-int8", "onnx"):
        if (run / name / "model.onnx").exists():
            return run / name
    if (run / "model.onnx").exists():
        return run
    raise FintuneError(f"{run} has no ONNX export; run `fintune export {run} --format onnx --quantize int8` first")


def _torch_run(run: Path, model: FintuneModel) -> Path | None:
    """Where a torch copy of the model is, for explanations."""
    if not isinstance(model.model, OnnxModel):
        return run
    source = model.meta.exported_from
    return Path(source) if source and (Path(source) / "model" / "fintune.json").exists() else None


def build_app(run: str | Path, cfg: ServeConfig, *, onnx: bool = False) -> FastAPI:
    """Load the run (or its ONNX export) and build the app with the config's limits and log."""
    run = Path(run)
    folder = model_folder(run, onnx)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    model = FintuneModel.load(folder, threads=cfg.threads)
    if model.servable is not None and model.chats is not None:  # the class says why not
        raise FintuneError(f"{run} is a {model.task} run; {model.servable}")
    api_key = required_key(cfg)
    log_path = Path(cfg.log.path) if cfg.log.path else run / "serve" / "predictions.sqlite"
    # Integrated Gradients hooks the embedding layer: it runs on a copy of the torch model, so
    # the served one never carries a hook; table models are explained by occlusion on the served one.
    source = _torch_run(run, model) if model.explanation_method in ON_EMBEDDINGS else None
    explainer = (lambda: FintuneModel.load(source)) if source is not None else None
    return create_app(model, cfg, name=run.name, log_path=log_path, api_key=api_key, explainer=explainer,
                      model_path=folder)


def required_key(cfg: ServeConfig) -> str | None:
    """The API key from the operator's environment; refuse to serve openly where one is required
    (``serve.require_api_key``, by default on any host that is not a loopback address)."""
    api_key = _secret(cfg.api_key_env)
    required = cfg.require_api_key if cfg.require_api_key is not None else not _is_loopback(cfg.host)
    if required and api_key is None:
        where = f"${cfg.api_key_env}" if cfg.api_key_env else "serve.api_key_env (unset)"
        raise FintuneError(f"serving on {cfg.host} needs an API key and {where} holds none; export it, or serve "
                           "on 127.0.0.1, or set serve.require_api_key: false in the operator's deploy config")
    return api_key.decode() if api_key is not None else None


def _secret(env: str | None) -> bytes | None:
    value = os.environ.get(env) if env else None
    return value.encode() if value else None


def serve(run: str | Path, cfg: ServeConfig, *, onnx: bool = False) -> None:
    """Run the server until interrupted; Ctrl-C or SIGTERM lets in-flight requests finish."""
    import uvicorn

    app = build_app(run, cfg, onnx=onnx)
    has_key = _secret(cfg.api_key_env) is not None
    if not has_key:
        console.print(f"[yellow]note:[/] no API key (${cfg.api_key_env} is unset): the endpoints are open to "
                      f"anything that reaches {cfg.host}")
    console.print(f"serving {run} on http://{cfg.host}:{cfg.port} (docs at /docs)"
                  + (" with an API key" if has_key else ""))
    try:  # httptools comes with uvicorn[standard] (the serve extra); without it, no header deadline
        from fintune.deploy.deadline import header_deadline

        http: Any = header_deadline(cfg.header_timeout_s)
    except ImportError:
        console.print("[yellow]note:[/] httptools is not installed: serve.header_timeout_s does not apply")
        http = "auto"
    uvicorn.run(app, host=cfg.host, port=cfg.port, timeout_graceful_shutdown=cfg.graceful_timeout_s,
                log_level="warning", access_log=False, http=http)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


__all__ = ["build_app", "create_app", "serve"]
