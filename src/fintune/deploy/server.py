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

import contextlib
import hmac
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader

from fintune.config import ServeConfig
from fintune.console import console
from fintune.deploy.docs import add_offline_docs
from fintune.deploy.metrics import ServerMetrics
from fintune.deploy.middleware import BodyLimit, Measure
from fintune.deploy.predlog import PredictionLog
from fintune.deploy.routes import ERRORS, add_error_handlers, operations_router, scoring_router
from fintune.deploy.service import Service, _secret
from fintune.errors import FintuneError
from fintune.evaluation.explain import ON_EMBEDDINGS
from fintune.models.onnx import OnnxModel
from fintune.predictors import FintuneModel

API_KEY_HEADER = "X-API-Key"


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

    if model.servable is None:
        app.include_router(scoring_router(service, require_key))
        if model.data_config.text_column is not None and model.features is None:
            from fintune.deploy.files_api import files_router

            app.include_router(files_router(service, require_key, model.data_config.files))
    if model.chats is None:
        from fintune.deploy.chat_api import ChatService, add_chat_routes

        chat = ChatService(model, service.cfg, service.name, service.log, service.hash_key,
                           lambda _: metrics.predicted.labels(label="(generated)").inc())
        add_chat_routes(app, chat, require_key, ERRORS)
    app.include_router(operations_router(service, metrics))
    # Refuses before the body is parsed; uploads of scans and recordings have a limit of their own.
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes, uploads=cfg.max_upload_bytes)

    app.add_middleware(Measure, metrics=metrics)  # added last, so outermost: 413s are counted too

    add_error_handlers(app)
    return app


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
