"""Scaling out on this 2-core machine: batch prediction on one process, ONNX int8, Ray Data
and Spark; the single-process curve as the input grows; Ray Train against torchrun.

The model: MiniLM fine-tuned for two epochs on sent_train.csv (``runs/bench_scale/model``,
trained here if absent; max length 64), and its int8 ONNX export. Every engine scores with
this one model.

Input rows are generated, not copied: each is ``<cashtag> <headline phrase> <filler>``, where
the cashtags are the 300 most frequent in sent_train.csv, the phrase one of 24 templates
(analyst actions, price moves, routine news, written here) and the filler 4-16 words drawn
from the 5,000 most frequent words of sent_train.csv by their frequency (seeded; the same
rows for every engine). A row is ~12-30 tokens, like a tweet.

Rows (each runs in a process of its own; rows already in the results file and not rerun are kept):
- ``torch``: ``fintune predict`` (one process, torch's threads on both cores, streamed Parquet
  in, CSV out); the reference output.
- ``onnx_int8``: ``fintune predict`` on the ``fintune export --format onnx --quantize int8``
  folder; agreement of labels with ``torch``.
- ``ray_data``: ``fintune.engines.ray.predict_file`` (Ray Data ``map_batches``, 2 actors of 1 CPU and
  1 torch thread each, blocks of 4,096 rows, Parquet in and out); labels equal to ``torch``'s,
  worst probability gap.
- ``spark``: ``fintune.engines.spark.predict_udf`` in ``local[2]`` (Parquet in, ``repartition(4)``,
  Parquet out, 1 torch thread per Python worker); labels equal to ``torch``'s, worst
  probability gap.
- ``curve_10k``, ``curve_100k``, ``curve_1m``: single-process ``fintune predict`` at that many
  rows (``--curve-backend``, ONNX int8 by default: the 1M point is an hour in torch here).
- ``train_torchrun``, ``train_ray``: the same run (2,000 tweets, 1 epoch, batch 32) by
  ``fintune train --nproc 2`` and ``fintune train --engine ray --workers 2``: training
  samples/s, validation weighted F1 (600 sent_valid tweets) and the largest weight difference
  between the two models.

Memory: ``peak_memory_mb`` is the peak, sampled every 0.5 s, of the summed proportional set
size (PSS: shared pages split between the processes that map them) of the row's whole
process tree: the Python driver, and Ray's raylet, object store and actors, or Spark's JVM
and its Python workers. ``peak_rss_mb`` is the driver process's own peak RSS.

    python benchmarks/scale.py --engine-rows 100000
    python benchmarks/scale.py --rows curve_10k,curve_100k,curve_1m

Writes benchmarks/results/scale.json keyed by row.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from common import emit, peak_rss_mb, print_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "scale.json"
RUNS = ROOT / "runs" / "bench_scale"
MODEL = RUNS / "model"
ROWS = ["torch", "onnx_int8", "ray_data", "spark", "curve_10k", "curve_100k", "curve_1m", "train_torchrun",
        "train_ray"]
CURVE = {"curve_10k": 10_000, "curve_100k": 100_000, "curve_1m": 1_000_000}
KEYS = ["rows", "seconds", "rows_per_s", "ratio_to_torch", "peak_memory_mb", "peak_rss_mb", "label_agreement",
        "max_prob_diff", "samples_per_s", "weighted_f1", "max_weight_diff"]
LABELS = ["Bearish", "Bullish", "Neutral"]

PHRASES = [
    "upgraded to buy at", "downgraded to sell at", "price target raised by", "price target cut by",
    "beats earnings estimates,", "misses revenue estimates,", "shares jump after", "shares slide after",
    "to report quarterly results on", "declares quarterly dividend of", "announces share buyback,",
    "files for bankruptcy protection,", "raises full-year guidance,", "lowers guidance amid",
    "hits record high as", "falls to 52-week low as", "to host conference call on", "names new CEO,",
    "initiated at outperform by", "initiated at underperform by", "rallies in premarket on",
    "tumbles in late trading on", "completes acquisition of", "faces lawsuit over",
]


# ------------------------------------------------------------------ generated rows

def vocabulary() -> tuple[list[str], list[str], np.ndarray]:
    """TFNS's 300 commonest cashtags, 5,000 commonest words and the words' frequencies."""
    texts = pd.read_csv(DATA / "sent_train.csv")["text"].astype(str)
    tags, words = Counter(), Counter()
    for text in texts:
        for token in text.split():
            if re.fullmatch(r"\$[A-Z]{1,5}", token):
                tags[token] += 1
            elif re.fullmatch(r"[A-Za-z][A-Za-z'.,-]*", token) and not token.startswith("http"):
                words[token] += 1
    common = words.most_common(5000)
    freq = np.array([c for _, c in common], dtype=float)
    return [t for t, _ in tags.most_common(300)], [w for w, _ in common], freq / freq.sum()


def generated_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` tweet-like rows with an ``id`` column (see the module docstring for how)."""
    tags, words, prob = vocabulary()
    rng = np.random.default_rng(seed)
    tag = rng.integers(len(tags), size=n)
    phrase = rng.integers(len(PHRASES), size=n)
    lengths = rng.integers(4, 17, size=n)
    filler = rng.choice(len(words), size=int(lengths.sum()), p=prob)
    cuts = np.concatenate([[0], np.cumsum(lengths)])
    texts = [f"{tags[tag[i]]} {PHRASES[phrase[i]]} " + " ".join(words[j] for j in filler[cuts[i]:cuts[i + 1]])
             for i in range(n)]
    return pd.DataFrame({"id": np.arange(n), "text": texts})


def input_file(n: int) -> Path:
    """Parquet of ``n`` generated rows, in row groups of 64k (written once, then reused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = RUNS / "inputs" / f"rows_{n}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(generated_rows(n), preserve_index=False), path, row_group_size=65_536)
    return path


# ------------------------------------------------------------------ memory of a process tree

def _tree_pss_kb(root: int) -> int:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


class TreeMemory:
    """Samples the summed PSS of this process and all its descendants in a thread."""

    def __init__(self, every: float = 0.5) -> None:
        self.every, self.peak_kb, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _tree_pss_kb(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


# ------------------------------------------------------------------ the model

def ensure_model() -> None:
    """MiniLM, two epochs on sent_train.csv, and its int8 ONNX export (once)."""
    from fintune import api
    from fintune.config import validate_config

    if (MODEL / "model").exists() and (MODEL / "onnx-int8").exists():
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    raw = _train_config(str(MODEL), DATA / "sent_train.csv")
    cfg = validate_config({**raw, "train": {**raw["train"], "epochs": 2}})
    api.train(cfg, overwrite=True, show_progress=False)
    api.export(MODEL, format="onnx", quantize="int8", data=DATA / "sent_valid.csv")


def _train_config(output_dir: str, train: Path) -> dict:
    valid = RUNS / "valid_600.csv"
    if not valid.exists():
        pd.read_csv(DATA / "sent_valid.csv").sample(n=600, random_state=0).to_csv(valid, index=False)
    return {"output_dir": output_dir, "seed": 42,
            "data": {"train": str(train), "validation": str(valid), "text_column": "text", "label_column": "label",
                     "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
                     "split": {"test_size": 0.0}},
            "model": {"backbone": "minilm", "max_length": 64}, "strategy": {"name": "full"},
            "train": {"epochs": 1, "batch_size": 32, "lr": 1e-4, "warmup_fraction": 0.1, "checkpoint_every": 0,
                      "early_stopping": None}}


# ------------------------------------------------------------------ rows

def _compare(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    other = other.sort_values("id").reset_index(drop=True)
    assert list(other["id"]) == list(reference["id"]), "rows lost or duplicated"
    probs = [f"prob_{name}" for name in LABELS]
    return {"label_agreement": float((other["predicted_label"].to_numpy() == reference["predicted_label"].to_numpy()).mean()),
            "max_prob_diff": float(np.abs(other[probs].to_numpy(float) - reference[probs].to_numpy(float)).max())}


def _reference(n: int) -> pd.DataFrame:
    path = RUNS / "out" / f"torch_{n}.csv"
    if not path.exists():
        raise SystemExit(f"run the torch row at {n} rows first ({path} is missing)")
    return pd.read_csv(path)


def single_process(backend: str, n: int, name: str) -> dict:
    from fintune import api

    source = input_file(n)
    out = RUNS / "out" / f"{name}_{n}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = MODEL if backend == "torch" else MODEL / "onnx-int8"
    with TreeMemory() as memory:
        start = time.perf_counter()
        api.predict(run, source, out, batch_size=64, show_progress=False)
        seconds = time.perf_counter() - start
    return {"rows": n, "backend": backend, "seconds": round(seconds, 1), "rows_per_s": round(n / seconds, 1),
            "peak_memory_mb": memory.peak_mb, "peak_rss_mb": peak_rss_mb()}


def ray_row(n: int) -> dict:
    import ray

    from fintune.engines.ray import predict_file

    source, out = input_file(n), RUNS / "out" / f"ray_{n}.parquet"
    shutil.rmtree(out, ignore_errors=True)  # this script's own earlier output (fintune refuses a folder that holds parts)
    with TreeMemory() as memory:
        start = time.perf_counter()
        predict_file(MODEL, source, out, workers=2, batch_size=256, cpus_per_worker=1.0)
        seconds = time.perf_counter() - start
        ray.shutdown()
    scored = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))], ignore_index=True)
    return {"rows": n, "seconds": round(seconds, 1), "rows_per_s": round(n / seconds, 1), "workers": 2,
            "peak_memory_mb": memory.peak_mb, "peak_rss_mb": peak_rss_mb(), **_compare(_reference(n), scored)}


def spark_row(n: int) -> dict:
    from pyspark.sql import SparkSession

    from fintune.engines.spark import predict_udf

    os.environ["PYSPARK_PYTHON"] = sys.executable
    source, out = input_file(n), RUNS / "out" / f"spark_{n}.parquet"
    with TreeMemory() as memory:
        start = time.perf_counter()
        spark = (SparkSession.builder.master("local[2]").appName("fintune-scale")
                 .config("spark.pyspark.python", sys.executable).config("spark.ui.enabled", "false")
                 .config("spark.driver.memory", "2g").getOrCreate())
        udf = predict_udf(MODEL, batch_size=256, threads=1)
        # One file under 128 MiB is one partition, so one Python worker: spread it over both cores.
        df = spark.read.parquet(str(source)).repartition(4)
        df.withColumn("fintune", udf(*udf.columns)).select("id", "fintune.*").write.mode("overwrite").parquet(str(out))
        seconds = time.perf_counter() - start
        spark.stop()
    scored = pd.read_parquet(out)
    return {"rows": n, "seconds": round(seconds, 1), "rows_per_s": round(n / seconds, 1), "executors": "local[2]",
            "peak_memory_mb": memory.peak_mb, "peak_rss_mb": peak_rss_mb(), **_compare(_reference(n), scored)}


def train_row(engine: str) -> dict:
    import yaml
    from safetensors.torch import load_file

    from fintune.config import validate_config

    output = RUNS / f"train_{engine}"
    config = RUNS / f"train_{engine}.yaml"
    sample = RUNS / "train_2000.csv"
    if not sample.exists():
        pd.read_csv(DATA / "sent_train.csv").sample(n=2000, random_state=0).to_csv(sample, index=False)
    cfg = _train_config(str(output), sample)
    validate_config(cfg)
    config.write_text(yaml.safe_dump(cfg))
    flags = ["--nproc", "2"] if engine == "torchrun" else ["--engine", "ray", "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fintune", "train", str(config), *flags, "--overwrite", "--no-progress"],
                   env=env, check=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((output / "metrics.json").read_text())
    training = metrics["training"]
    row = {"seconds": round(seconds, 1), "samples_per_s": training["train_samples_per_s"],
           "train_seconds": training["train_seconds"], "processes": training["processes"],
           "ranks_in_sync": training["ranks_in_sync"], "weighted_f1": metrics["validation"]["weighted_f1"]}
    other = RUNS / ("train_torchrun" if engine == "ray" else "train_ray") / "model" / "model.safetensors"
    if other.exists():
        one, two = load_file(str(output / "model" / "model.safetensors")), load_file(str(other))
        row["max_weight_diff"] = max(float((one[k].float() - two[k].float()).abs().max()) for k in one)
    return row


def child(row: str, engine_rows: int, curve_backend: str) -> dict:
    if row == "model":  # trained in a process of its own, so no row's peak memory includes training
        ensure_model()
        return {}
    if row in ("torch", "onnx_int8"):
        result = single_process(row, engine_rows, row)
        if row == "onnx_int8":
            result.update(_compare(_reference(engine_rows), pd.read_csv(RUNS / "out" / f"onnx_int8_{engine_rows}.csv")))
        return result
    if row == "ray_data":
        return ray_row(engine_rows)
    if row == "spark":
        return spark_row(engine_rows)
    if row in CURVE:
        return single_process(curve_backend, CURVE[row], f"curve_{curve_backend}")
    return train_row(row.removeprefix("train_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    parser.add_argument("--engine-rows", type=int, default=100_000, help="rows each engine scores")
    parser.add_argument("--curve-backend", choices=["torch", "onnx_int8"], default="onnx_int8")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(child(args.child, args.engine_rows, args.curve_backend))
        return
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    subprocess.run([sys.executable, __file__, "--child", "model"], stdout=subprocess.DEVNULL, check=True)
    for row in args.rows.split(","):
        start = time.time()
        proc = subprocess.run([sys.executable, __file__, "--child", row, "--engine-rows", str(args.engine_rows),
                               "--curve-backend", args.curve_backend], stdout=subprocess.PIPE, text=True, check=True)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        results[row] = {**json.loads(line[len("RESULT "):]), "wall_seconds": round(time.time() - start, 1)}
        torch_row = results.get("torch", {})
        for name in ("onnx_int8", "ray_data", "spark"):
            if name in results and torch_row.get("rows") == results[name].get("rows"):
                results[name]["ratio_to_torch"] = round(results[name]["rows_per_s"] / torch_row["rows_per_s"], 3)
        results["machine"] = {"cpu_cores": os.cpu_count()}
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table({k: v for k, v in results.items() if k != "machine"}, KEYS, "row", width=10)


if __name__ == "__main__":
    main()
