"""The operator's settings win over a run folder's; bad text and odd bodies get the documented
error shape; slow explanations never starve the health endpoints."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from fintune.config import ServeConfig
from fintune.deploy import deploy_config
from fintune.deploy.predlog import input_hash
from fintune.deploy.server import build_app
from fintune.errors import FintuneError
from tests.deploy.conftest import API_KEY, start_server

LOOSENING = {"serve": {"api_key_env": None, "require_api_key": False, "max_texts": 5000, "max_text_chars": 10**6,
                       "max_body_bytes": 10**9, "host": "0.0.0.0", "port": 1,
                       "log": {"raw_text": True, "path": "ELSEWHERE"}}}


@pytest.fixture()
def hostile_run(text_run: Path, tmp_path: Path) -> Path:
    """A copy of a run whose config.yaml tries every loosening of the server."""
    run = tmp_path / "received_run"
    shutil.copytree(text_run, run, ignore=shutil.ignore_patterns("serve"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    deploy = yaml.safe_load(yaml.safe_dump(LOOSENING).replace("ELSEWHERE", str(tmp_path / "elsewhere.sqlite")))
    config["deploy"] = deploy
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def test_a_run_folder_cannot_loosen_the_server(hostile_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINTUNE_API_KEY", API_KEY)
    cfg = deploy_config(hostile_run).serve
    defaults = ServeConfig()
    for key in ("api_key_env", "require_api_key", "max_texts", "max_text_chars", "max_body_bytes", "host", "port"):
        assert getattr(cfg, key) == getattr(defaults, key), key
    assert cfg.log == defaults.log
    with TestClient(build_app(hostile_run, cfg)) as client:
        assert client.post("/v1/predict", json={"texts": ["acme beats"]}).status_code == 401
        many = client.post("/v1/predict", json={"texts": ["acme beats"] * 100}, headers={"X-API-Key": API_KEY})
        assert many.status_code == 422 and many.json()["limit"] == "max_texts"
        ok = client.post("/v1/predict", json={"texts": ["acme beats"]}, headers={"X-API-Key": API_KEY})
        assert ok.status_code == 200
    assert not (tmp_path / "elsewhere.sqlite").exists()
    with sqlite3.connect(hostile_run / "serve" / "predictions.sqlite") as db:
        assert db.execute("SELECT count(*), max(text) FROM predictions").fetchone() == (1, None)


def test_the_operators_settings_do_apply(hostile_run: Path, tmp_path: Path) -> None:
    (tmp_path / "ops.yaml").write_text(yaml.safe_dump({"serve": {"max_texts": 3, "log": {"raw_text": True}}}))
    cfg = deploy_config(hostile_run, tmp_path / "ops.yaml", ["serve.port=9123"]).serve
    assert (cfg.max_texts, cfg.log.raw_text, cfg.port) == (3, True, 9123)


def test_a_required_key_that_is_missing_stops_the_server_from_starting(text_run: Path, monkeypatch) -> None:
    monkeypatch.delenv("FINTUNE_API_KEY", raising=False)
    with pytest.raises(FintuneError, match="serving on 0.0.0.0 needs an API key and \\$FINTUNE_API_KEY holds none"):
        build_app(text_run, ServeConfig(host="0.0.0.0"))
    with pytest.raises(FintuneError, match="needs an API key"):
        build_app(text_run, ServeConfig(require_api_key=True))
    build_app(text_run, ServeConfig(host="0.0.0.0", require_api_key=False))  # the operator's explicit choice
    monkeypatch.setenv("FINTUNE_API_KEY", API_KEY)
    build_app(text_run, ServeConfig(host="0.0.0.0"))


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/predict", '{"texts": ["fine", "bad \\ud800 text"]}', "texts.1"),
    ("/v1/predict", '{"rows": [{"text": "bad \\udfff"}]}', "rows.0.text"),
    ("/v1/explain", '{"text": "\\ud83d alone"}', "text"),
])
def test_text_that_is_not_utf8_is_a_422_naming_the_field(text_run: Path, path: str, body: str, field: str) -> None:
    with TestClient(build_app(text_run, ServeConfig(log={"enabled": False})), raise_server_exceptions=False) as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert set(response.json()) <= {"error", "limit", "allowed", "got"}
    assert field in response.json()["error"] and "surrogate" in response.json()["error"]


@pytest.mark.parametrize("body", [
    '{"texts": ' + "[" * 50_000 + "]" * 50_000 + "}",
    '{"texts": [' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "]}",
    "not json at all",
    '{"texts": "one string"}',
])
def test_odd_bodies_get_the_documented_error_shape(text_run: Path, body: str) -> None:
    with TestClient(build_app(text_run, ServeConfig(log={"enabled": False})), raise_server_exceptions=False) as client:
        response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"]
    assert set(payload) <= {"error", "limit", "allowed", "got"}


def test_the_log_hash_is_keyed() -> None:
    text = "acme beats"
    keyed = input_hash(text, b"secret")
    assert keyed != hashlib.sha256(text.encode()).hexdigest() and len(keyed) == 64
    assert keyed == input_hash(text, b"secret") != input_hash(text, b"other")
    assert input_hash(text, None) is None


def test_an_explanation_flood_leaves_health_and_predict_responsive(text_run: Path, tmp_path: Path) -> None:
    server = start_server(text_run, tmp_path, explain_queue=2)
    headers = {"X-API-Key": API_KEY}
    statuses: list[int] = []
    retry_after: list[str] = []

    def flood() -> None:
        with httpx.Client(base_url=server.url, timeout=120, headers=headers) as client:
            for _ in range(3):
                r = client.post("/v1/explain", json={"text": "acme beats record profit and raises guidance"})
                statuses.append(r.status_code)
                if r.status_code == 503:
                    retry_after.append(r.headers.get("retry-after", ""))

    try:
        threads = [threading.Thread(target=flood) for _ in range(20)]
        for t in threads:
            t.start()
        probes = []
        with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
            for _ in range(15):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                probes.append(time.monotonic() - started)
                time.sleep(0.05)
            started = time.monotonic()
            assert client.post("/v1/predict", json={"texts": ["acme beats"]}).status_code == 200
            predict_s = time.monotonic() - started
        for t in threads:
            t.join(300)
    finally:
        server.stop()
    assert max(probes) < 1.0, probes
    assert predict_s < 5.0
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses
    assert retry_after and all(v.isdigit() for v in retry_after)


def test_slow_headers_are_cut_off_and_health_stays_fast(text_run: Path, tmp_path: Path) -> None:
    """A client that never finishes its headers is disconnected after serve.header_timeout_s;
    meanwhile and after, /healthz answers at once."""
    import socket
    import time

    server = start_server(text_run, tmp_path, header_timeout_s=1.0)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.settimeout(10)
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert slow.recv(1024) == b""  # closed by the server, without an answer
        assert 0.8 < time.monotonic() - started < 5
        slow.close()
        # A client that sends whole headers in time is served as before.
        assert httpx.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
    finally:
        server.stop()
