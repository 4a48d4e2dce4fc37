"""The real server on a loopback port: results, micro-batching, limits, key, log, shutdown."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from fintune import api
from tests.conftest import sentiment_frame
from tests.deploy.conftest import API_KEY, Server, start_server

KEY = {"X-API-Key": API_KEY}


def post(server: Server, payload: dict, path: str = "/v1/predict", headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=payload, headers=KEY if headers is None else headers, timeout=30)


def test_concurrent_requests_equal_fintune_predict(server: Server, tmp_path: Path) -> None:
    frame = sentiment_frame(48, seed=21)
    frame.to_csv(tmp_path / "in.csv", index=False)
    expected = pd.read_csv(api.predict(server.run, tmp_path / "in.csv", tmp_path / "out.csv", show_progress=False))
    chunks = [frame["text"].iloc[i:i + 3].tolist() for i in range(0, 48, 3)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda texts: post(server, {"texts": texts}), chunks))
    assert all(r.status_code == 200 for r in responses)
    got = [p for r in responses for p in r.json()["predictions"]]
    assert [p["label"] for p in got] == expected["predicted_label"].tolist()
    labels = sorted(got[0]["probabilities"])
    probs = np.array([[p["probabilities"][n] for n in labels] for p in got])
    np.testing.assert_allclose(probs, expected[[f"prob_{n}" for n in labels]].to_numpy(), atol=1e-5)
    metrics = httpx.get(f"{server.url}/metrics").text
    # 16 requests of 3 texts from 8 threads: some forward passes held more than one request.
    count = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("fintune_batch_size_count")))
    assert count < 16
    assert 'fintune_requests_total{endpoint="/v1/predict",status="200"}' in metrics
    assert "fintune_predictions_total" in metrics and "fintune_request_seconds_bucket" in metrics


@pytest.mark.parametrize(("payload", "headers", "status", "limit"), [
    ({"texts": ["acme beats"] * 9}, KEY, 422, "max_texts"),
    ({"texts": ["acme beats " * 40]}, KEY, 422, "max_text_chars"),
    ({"rows": [{"text": "acme " * 70}]}, KEY, 422, "max_text_chars"),
    ({"texts": ["acme"] * 8, "pad": "x" * 30_000}, KEY, 413, "max_body_bytes"),
    ({"texts": ["acme beats"]}, {}, 401, None),
    ({"texts": ["acme beats"]}, {"X-API-Key": "wrong"}, 401, None),
    ({"texts": ["acme beats"]}, {"X-API-Key": API_KEY + "0"}, 401, None),
    ({"texts": []}, KEY, 422, None),
    ({"texts": ["  "]}, KEY, 422, None),
    ({"texts": ["a"], "rows": [{"text": "a"}]}, KEY, 422, None),
    ({"rows": [{"headline": "acme beats"}]}, KEY, 422, None),
    ({"texts": "acme beats"}, KEY, 422, None),
])
def test_every_refusal_is_a_json_4xx_that_names_the_problem(server: Server, payload: dict, headers: dict,
                                                             status: int, limit: str | None) -> None:
    response = post(server, payload, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["error"]
    if limit:
        assert body["limit"] == limit and f"serve.{limit}" in body["error"]


def test_bad_json_and_chunked_bodies(server: Server) -> None:
    bad = httpx.post(f"{server.url}/v1/predict", content=b'{"texts": [', headers={**KEY, "content-type":
                                                                               "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.json()["error"]
    digits = httpx.post(f"{server.url}/v1/predict", content=b'{"texts": [' + b"1" * 5000 + b"]}",
                        headers={**KEY, "content-type": "application/json"})
    assert digits.status_code == 422 and "JSON body cannot be read" in digits.json()["error"]

    def chunks():  # no Content-Length: the limit is counted while reading
        yield b'{"texts": ["'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"]}'
    big = httpx.post(f"{server.url}/v1/predict", content=chunks(), headers={**KEY, "content-type": "application/json"})
    assert big.status_code == 413 and big.json()["limit"] == "max_body_bytes"


def test_rows_explain_health_and_docs(server: Server) -> None:
    assert post(server, {"rows": [{"text": "acme beats the quarter"}]}).json()["predictions"][0]["label"]
    explained = post(server, {"text": "acme beats the quarter"}, "/v1/explain").json()
    assert explained["method"] == "integrated_gradients"
    assert [a["part"] for a in explained["attributions"]] == ["acme", "beats", "the", "quarter"]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/metrics"} <= set(spec["paths"])


def test_cut_inputs_are_marked_and_counted(server: Server) -> None:
    long = " ".join(["revenue grew in every segment and margins widened"] * 5)  # within max_text_chars 300
    answer = post(server, {"texts": ["acme beats", long]}).json()["predictions"]
    assert [p["truncated"] for p in answer] == [False, True]
    metrics = httpx.get(f"{server.url}/metrics", headers=KEY).text
    counted = [line for line in metrics.splitlines() if line.startswith("fintune_truncated_inputs_total")]
    assert counted and float(counted[0].split()[-1]) >= 1


def test_predictions_are_logged_without_text(server: Server) -> None:
    before = _count(server)
    post(server, {"texts": ["globex misses", "hooli holds meeting"]})
    deadline = time.monotonic() + 10
    while _count(server) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    with sqlite3.connect(server.run / "serve" / "predictions.sqlite") as db:
        rows = db.execute("SELECT input_hash, label, confidence, length(sketch), text FROM predictions "
                          "ORDER BY id DESC LIMIT 2").fetchall()
    assert all(len(h) == 64 and label and 0 < conf <= 1 and size == 32 * 4 and text is None
               for h, label, conf, size, text in rows)


def _count(server: Server) -> int:
    with sqlite3.connect(server.run / "serve" / "predictions.sqlite") as db:
        return db.execute("SELECT count(*) FROM predictions").fetchone()[0]


def test_shutdown_under_load_loses_no_accepted_request(text_run: Path, tmp_path: Path) -> None:
    # Requests wait up to a second for their batch, so all are in flight when SIGTERM comes.
    srv = start_server(text_run, tmp_path, max_wait_ms=1000, max_batch_size=64,
                       log={"path": str(tmp_path / "log.sqlite"), "raw_text": True})
    texts = sentiment_frame(24, seed=3)["text"].tolist()
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def call(text: str) -> None:
        response = post(srv, {"texts": [text]})
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    code = srv.stop(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down cleanly
    assert len(results) == 24 and all(r.status_code == 200 for r in results)
    with sqlite3.connect(tmp_path / "log.sqlite") as db:
        logged = {row[0] for row in db.execute("SELECT text FROM predictions")}
    assert logged == set(texts)  # raw_text on: the texts themselves were kept


def test_docs_page_needs_no_network(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    script = httpx.get(f"{server.url}/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert "/docs" not in httpx.get(f"{server.url}/openapi.json").json()["paths"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_docs_render_in_a_browser_with_the_network_off(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page()

        def offline(route) -> None:  # only the server itself answers, as on a machine without internet
            if route.request.url.startswith(server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.goto(f"{server.url}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("fintune", timeout=30_000)
        expect(page.get_by_text("/v1/predict", exact=True).first).to_be_visible()
        browser.close()
    assert outside == []
