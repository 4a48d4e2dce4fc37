"""What the scoring endpoints call: limits, the micro-batcher, the prediction log, explanations."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException

from fintune.config import ServeConfig
from fintune.data import Examples
from fintune.deploy.batcher import MicroBatcher
from fintune.deploy.limits import limit_error
from fintune.deploy.metrics import ServerMetrics
from fintune.deploy.predlog import PredictionLog, Record, input_hash, sketch
from fintune.deploy.schemas import (
    Attribution, ExplainRequest, ExplainResponse, Prediction, PredictRequest, PredictResponse, WindowShare,
)
from fintune.predictors import FintuneModel
from fintune.models.label_sets import predicted_sets
from fintune.tasks import task_of

EXPLAIN_RETRY_S = 2  # what Retry-After says when the explanation queue is full


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
            files = self.model.data_config.files
            if files is not None and files.column in frame.columns:
                # A path in a request would make the server open its own files: uploads only.
                raise HTTPException(422, {"error": f"'{files.column}' names files on the server; upload the files "
                                                   "to /v1/predict/files instead"})
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
                          pd.concat(features, ignore_index=True) if features else None, parts={"pairs": pairs})
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
        if task_of(self.model.task).answer == "labels":
            held = predicted_sets(out, names, self.model.meta.label_thresholds)
            return [Prediction(labels=labels, probabilities={n: float(p) for n, p in zip(names, row, strict=True)})
                    for labels, row in zip(held, out, strict=True)]
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


def _secret(env: str | None) -> bytes | None:
    value = os.environ.get(env) if env else None
    return value.encode() if value else None
