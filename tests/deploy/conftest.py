"""A trained tiny run, its ONNX export, and a real server on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import credit_frame, sentiment_frame, write_config

API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    from fintune import api

    folder = tmp_path_factory.mktemp("deploy_text")
    train = folder / "train.csv"
    sentiment_frame(300).to_csv(train, index=False)
    config = write_config(folder / "run.yaml", tiny_bert, train, folder / "run")
    api.train(config, show_progress=False)
    return folder / "run"


@pytest.fixture(scope="session")
def credit_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """Rows in, no text: the features-only MLP on a credit table."""
    from fintune import api

    folder = tmp_path_factory.mktemp("deploy_credit")
    train = folder / "credit.csv"
    credit_frame(400).to_csv(train, index=False)
    config = write_config(
        folder / "run.yaml", tiny_bert, train, folder / "run",
        data={"text_column": None, "feature_columns": ["income", "debt_ratio", "purpose", "age"]},
        model={"backbone": str(tiny_bert), "kind": "mlp", "max_length": 32},
        train={"epochs": 5, "batch_size": 32, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"})
    api.train(config, show_progress=False)
    return folder / "run"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    run: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_server(run: Path, tmp: Path, *extra: str, env: dict | None = None, **serve: object) -> Server:
    """``fintune serve`` in a child process; returns once /readyz answers."""
    port = free_port()
    deploy = tmp / f"deploy-{port}.yaml"
    deploy.write_text(yaml.safe_dump({"serve": {"max_texts": 8, "max_text_chars": 300, "max_body_bytes": 20_000,
                                                "max_wait_ms": 20, **serve}}))
    environment = {**os.environ, "FINTUNE_API_KEY": API_KEY, "FINTUNE_LOG_SECRET": "test-log-secret", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "fintune", "serve", str(run), "--port", str(port),
                                "--config", str(deploy), *extra], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, process, run)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready in 120 s")


@pytest.fixture(scope="session")
def server(text_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(text_run, tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()
