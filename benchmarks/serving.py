"""Serving speed on Twitter Financial News sentiment: in-process throughput and the HTTP
server under load, on this machine's CPU cores.

Rows, all on the 2,388 validation tweets (URLs replaced as in training), max length 64:

* ``hf_pipeline`` / ``hf_pipeline_batch32``: transformers' ``pipeline("text-classification")``
  on the same fine-tuned model, at its default batch size (1) and at 32 - the baseline;
* ``fintune_torch``: ``FintuneModel.outputs`` (length-sorted batches of 64, fp32);
* ``onnx_fp32`` / ``onnx_int8``: the ``fintune export --format onnx [--quantize int8]``
  folders run by onnxruntime, with their weighted-F1 drop against torch in points;
* ``server_<backend>_c<N>``: ``fintune serve`` (micro-batching on, prediction log on) under N
  closed-loop clients in a separate process, one tweet per request over loopback HTTP,
  for a fixed time each: requests/s, p50 / p99 latency, errors. Server and clients share the
  machine's cores, as they would on a 2-core box.

Targets (issue 6): int8 ONNX >= 3x the pipeline's throughput with <= 0.5 points weighted-F1
drop; zero errors under load; p99 < 100 ms at 8 clients.

    python benchmarks/serving.py                    # uses runs/bench_strategies/full, or trains it
    python benchmarks/serving.py --seconds 10

Writes benchmarks/results/serving.json keyed by row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from common import emit, print_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "serving.json"
RUN = ROOT / "runs" / "bench_strategies" / "full"
KEYS = ["samples_per_s", "speedup_vs_pipeline", "speedup_vs_pipeline_batch32", "weighted_f1", "weighted_f1_drop", "requests_per_s",
        "p50_latency_ms", "p99_latency_ms", "errors"]
CLIENTS = (1, 8, 32)


def validation_texts() -> tuple[list[str], np.ndarray, object]:
    from fintune.data import load_examples
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(RUN)
    examples = load_examples(str(DATA / "sent_valid.csv"), model.data_config, model.task, model.label_names)
    return examples.texts, examples.labels, model


def weighted_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predicted, average="weighted"))


def timed(fn, texts: list[str]) -> tuple[float, object]:
    fn(texts[:64])  # warm-up: first-call allocations and lazy initialization
    start = time.perf_counter()
    out = fn(texts)
    return len(texts) / (time.perf_counter() - start), out


def in_process_rows(texts: list[str], labels: np.ndarray, model) -> dict:
    from transformers import pipeline

    from fintune.predictors import FintuneModel

    rows: dict[str, dict] = {}
    names = model.label_names
    for name, batch in (("hf_pipeline", 1), ("hf_pipeline_batch32", 32)):
        pipe = pipeline("text-classification", model=str(RUN / "model"), device="cpu", top_k=None)

        def run(items: list[str], pipe=pipe, batch=batch) -> list:
            return pipe(items, batch_size=batch, truncation=True, max_length=64)

        speed, out = timed(run, texts)
        predicted = np.array([names.index(max(r, key=lambda x: x["score"])["label"]) for r in out])
        rows[name] = {"samples_per_s": round(speed, 1), "weighted_f1": weighted_f1(labels, predicted)}
    for name, path in (("fintune_torch", RUN), ("onnx_fp32", RUN / "onnx"), ("onnx_int8", RUN / "onnx-int8")):
        served = FintuneModel.load(path)
        speed, probs = timed(lambda items, m=served: m.outputs(items, 64), texts)
        rows[name] = {"samples_per_s": round(speed, 1),
                      "weighted_f1": weighted_f1(labels, served.labels_ids(probs))}
    base, batched = rows["hf_pipeline"]["samples_per_s"], rows["hf_pipeline_batch32"]["samples_per_s"]
    for name, row in rows.items():
        row["speedup_vs_pipeline"] = round(row["samples_per_s"] / base, 2)
        row["speedup_vs_pipeline_batch32"] = round(row["samples_per_s"] / batched, 2)
        row["weighted_f1_drop"] = round(100 * (rows["fintune_torch"]["weighted_f1"] - row["weighted_f1"]), 3)
    return rows


def export_onnx() -> dict:
    from fintune import api

    checks = {}
    for quantize, folder in ((None, "onnx"), ("int8", "onnx-int8")):
        api.export(RUN, format="onnx", quantize=quantize, data=DATA / "sent_valid.csv")
        checks[folder] = json.loads((RUN / folder / "export.json").read_text())
    return checks


# ---------------------------------------------------------------- load generation (child process)


def load(url: str, clients: int, seconds: float) -> dict:
    """Closed-loop clients: each sends one tweet, waits for the answer, sends the next.

    Each client keeps one connection (``http.client``, keep-alive): a light load generator,
    like wrk, so the cores it shares with the server go to the server.
    """
    import http.client
    from urllib.parse import urlparse

    texts = validation_texts_plain()
    where = urlparse(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        while time.perf_counter() < stop_at:
            body = json.dumps({"texts": [texts[int(rng.integers(len(texts)))]]})
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/predict", body, {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "requests_per_s": round(len(latencies) / wall, 1),
            "p50_latency_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_latency_ms": round(float(np.percentile(ms, 99)), 1), "errors": errors[0]}


def validation_texts_plain() -> list[str]:
    import pandas as pd

    return pd.read_csv(DATA / "sent_valid.csv")["text"].astype(str).tolist()


def server_rows(seconds: float) -> dict:
    """Start each server, wait until ready, drive it from a child process at each client count."""
    import httpx

    rows = {}
    for backend, flags in (("onnx_int8", ["--onnx"]), ("torch", [])):
        port = 8700 + len(rows)
        log = ROOT / "runs" / "bench_serving" / f"{backend}.sqlite"
        log.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "FINTUNE_API_KEY"}
        server = subprocess.Popen([sys.executable, "-m", "fintune", "serve", str(RUN), "--port", str(port), *flags,
                                   "-s", f"serve.log.path={log}"], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            for clients in CLIENTS:
                proc = subprocess.run([sys.executable, __file__, "--load", url, "--clients", str(clients),
                                       "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True, check=True)
                line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
                rows[f"server_{backend}_c{clients}"] = json.loads(line[len("RESULT "):])
                print(f"server_{backend}_c{clients}", rows[f"server_{backend}_c{clients}"], flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per client count")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        emit(load(args.load, args.clients, args.seconds))
        return
    if not (RUN / "model").exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "strategies_tfns.py"), "--rows", "full"], check=True)
    checks = export_onnx()
    texts, labels, model = validation_texts()
    rows = in_process_rows(texts, labels, model)
    for folder, check in checks.items():
        rows[{"onnx": "onnx_fp32", "onnx-int8": "onnx_int8"}[folder]]["export_agreement"] = check["agreement"]
    print(json.dumps(rows), flush=True)
    del model
    rows.update(server_rows(args.seconds))
    int8, c8 = rows["onnx_int8"], rows["server_onnx_int8_c8"]
    rows["targets"] = {
        "int8_speedup_vs_pipeline": int8["speedup_vs_pipeline"], "int8_speedup_met": int8["speedup_vs_pipeline"] >= 3,
        "int8_speedup_vs_pipeline_batch32": int8["speedup_vs_pipeline_batch32"],
        "int8_weighted_f1_drop": int8["weighted_f1_drop"], "int8_drop_met": int8["weighted_f1_drop"] <= 0.5,
        "errors_under_load": sum(r["errors"] for k, r in rows.items() if k.startswith("server_")),
        "p99_latency_ms_c8": c8["p99_latency_ms"], "p99_met": c8["p99_latency_ms"] < 100,
        "cpu_cores": os.cpu_count()}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(rows, indent=2) + "\n")
    print_table({k: v for k, v in rows.items() if k != "targets"}, KEYS, "system", width=10)
    print("targets:", json.dumps(rows["targets"]))


if __name__ == "__main__":
    main()
