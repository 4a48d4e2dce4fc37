"""Prometheus metrics of the server, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest,
)

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Request counts by endpoint and status, latency, batch sizes, predicted classes, inputs cut."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, label_names: list[str] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fintune_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("fintune_request_seconds", "Request latency in seconds", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_sizes = Histogram("fintune_batch_size", "Inputs per forward pass (micro-batches)",
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self.predicted = Counter("fintune_predictions", "Predictions by predicted class", ["label"],
                                 registry=self.registry)
        for name in label_names or []:
            self.predicted.labels(label=name)  # every class shows, at 0, from the start
        self.truncated = Counter("fintune_truncated_inputs", "Inputs longer than the model reads (scored on their "
                                 "beginning only)", registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
