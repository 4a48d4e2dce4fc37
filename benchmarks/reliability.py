"""Fault drills: kill -9 (training, predict, export, distill, tune), concurrent runs, overwrite +
crash, a server stopped under load, an explanation flood, links in a run folder, a YAML alias
bomb, damaged runs in a listing, and a full disk. Prints one table: drill | runs | data lost | wrong results | tracebacks.

Everything runs on this machine with a tiny random BERT written by the script (no download),
through the `fintune` command line in child processes, the way a user (or a scheduler that
kills jobs) runs it.

    python benchmarks/reliability.py                 # every drill
    python benchmarks/reliability.py --drills train_kill --trials 5

Writes benchmarks/results/reliability.json: one row per drill. "data lost" counts user files
or accepted requests that are gone, "wrong results" runs whose end state differs from an
uninterrupted one (other weights, a partial file that looks complete, two runs at once),
"tracebacks" outputs that show a Python traceback instead of one line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import COMPANIES, FILLER, LABELS, sentiment_frame  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "reliability.json"
KEYS = ["runs", "data_lost", "wrong_results", "tracebacks", "seconds"]
API_KEY = "reliability-key"


def tiny_bert(folder: Path) -> Path:
    """A 2-layer random BERT over the synthetic sentences' words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = sorted({w for ws in LABELS.values() for w in ws} | set(COMPANIES) | set(FILLER))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    folder.mkdir(parents=True, exist_ok=True)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=128)).save_pretrained(folder)
    return folder


def config(work: Path, bert: Path, output: Path, name: str, **train: object) -> Path:
    data = work / "train.csv"
    if not data.exists():
        sentiment_frame(400).to_csv(data, index=False)
    raw = {"output_dir": str(output), "seed": 7,
           "data": {"train": str(data), "text_column": "text", "label_column": "label"},
           "model": {"backbone": str(bert), "max_length": 32},
           "train": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 3, "precision": "fp32",
                     "num_threads": 1, "early_stopping": None, **train}}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def fintune(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fintune", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fintune", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})


def weights(run: Path) -> str:
    return hashlib.sha256((run / "model" / "model.safetensors").read_bytes()).hexdigest()


def traceback_in(text: str) -> int:
    return int("Traceback (most recent call last)" in text)


def row(runs: int, lost: int, wrong: int, tracebacks: int, started: float, **extra: object) -> dict:
    return {"runs": runs, "data_lost": lost, "wrong_results": wrong, "tracebacks": tracebacks,
            "seconds": round(time.time() - started, 1), **extra}


# ---------------------------------------------------------------- drills


def drill_train_kill(work: Path, bert: Path, trials: int) -> dict:
    """kill -9 at a random moment of training, then --resume (again, if killed before a
    checkpoint): the final weights must equal those of the uninterrupted run."""
    started = time.time()
    reference = work / "reference"
    t0 = time.time()
    done = fintune("train", str(config(work, bert, reference, "reference")), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    wall = time.time() - t0
    want = weights(reference)
    rng = random.Random(0)
    wrong = tracebacks = lost = 0
    failures: list[dict] = []
    for trial in range(trials):
        out = work / f"killed_{trial}"
        cfg = config(work, bert, out, f"killed_{trial}")
        child = spawn("train", str(cfg), "--no-progress")
        time.sleep(rng.uniform(2.0, max(2.5, wall)))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        resumed = fintune("train", str(cfg), "--resume", "--no-progress")
        tracebacks += traceback_in(resumed.stdout + resumed.stderr)
        if resumed.returncode != 0:  # killed before anything was written: start it again
            resumed = fintune("train", str(cfg), "--overwrite", "--no-progress")
            tracebacks += traceback_in(resumed.stdout + resumed.stderr)
        lost += int(not (work / "train.csv").exists())
        bad = resumed.returncode != 0 or not (out / "model").exists() or weights(out) != want
        wrong += int(bad)
        if bad or traceback_in(resumed.stdout + resumed.stderr):
            failures.append({"trial": trial, "code": resumed.returncode, "tail": (resumed.stdout + resumed.stderr)[-600:]})
    return row(trials, lost, wrong, tracebacks, started, failures=failures)


def drill_predict_kill(work: Path, bert: Path, trials: int) -> dict:
    """kill -9 of `fintune predict`: the output is absent or complete, never partial."""
    import pandas as pd

    started = time.time()
    run = work / "reference"
    big = work / "big.csv"
    pd.concat([sentiment_frame(1000, seed=s) for s in range(6)]).to_csv(big, index=False)
    rng = random.Random(1)
    wrong = tracebacks = 0
    for trial in range(trials):
        out = work / f"scored_{trial}.csv"
        child = spawn("predict", str(run), "--input", str(big), "--output", str(out), "--batch-size", "8")
        time.sleep(rng.uniform(0.5, 6.0))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        if out.exists():
            wrong += int(len(pd.read_csv(out)) != 6000)
    return row(trials, 0, wrong, tracebacks, started)


def drill_concurrent(work: Path, bert: Path, trials: int) -> dict:
    """Two `fintune train` into one output_dir at once: one trains, the other exits 2 at once."""
    started = time.time()
    wrong = tracebacks = 0
    for trial in range(trials):
        out = work / f"shared_{trial}"
        cfg = config(work, bert, out, f"shared_{trial}", epochs=2)
        procs = [spawn("train", str(cfg), "--no-progress") for _ in range(2)]
        outputs = [p.communicate()[0] for p in procs]
        tracebacks += sum(traceback_in(o) for o in outputs)
        steps = [json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines()]
        wrong += int(sorted(p.returncode for p in procs) != [0, 2] or steps != sorted(set(steps)))
    return row(trials, 0, wrong, tracebacks, started)


def drill_overwrite_crash(work: Path, bert: Path, trials: int) -> dict:
    """--overwrite of a finished run, killed mid-training: the old model is intact; user files
    in a folder that is not a run are never deleted."""
    started = time.time()
    lost = wrong = tracebacks = 0
    run = work / "reference"
    want = weights(run)
    for trial in range(trials):
        cfg = config(work, bert, run, f"overwrite_{trial}", epochs=30)
        child = spawn("train", str(cfg), "--overwrite", "--no-progress")
        time.sleep(4 + trial)
        child.send_signal(signal.SIGKILL)
        child.communicate()
        wrong += int(not (run / "metrics.json").exists() or weights(run) != want)
        project = work / f"project_{trial}"
        project.mkdir()
        (project / "notes.txt").write_text("mine")
        refused = fintune("train", str(config(work, bert, project, f"project_{trial}")), "--overwrite")
        tracebacks += traceback_in(refused.stdout + refused.stderr)
        lost += int(not (project / "notes.txt").exists() or refused.returncode != 2)
    return row(trials * 2, lost, wrong, tracebacks, started)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(run: Path, **serve: object) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    deploy = run.parent / f"deploy-{port}.yaml"
    deploy.write_text(yaml.safe_dump({"serve": serve}))
    proc = spawn("serve", str(run), "--port", str(port), "--config", str(deploy),
                 env={"FINTUNE_API_KEY": API_KEY, "FINTUNE_LOG_SECRET": "drill"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def drill_server_sigterm(work: Path, bert: Path, requests: int, clients: int = 16) -> dict:
    """4,000 requests from 16 clients, SIGTERM in the middle: every request answered 200 is in
    the prediction log; the server drains and exits 0."""
    import httpx

    started = time.time()
    run = work / "reference"
    (run / "serve").exists() and [p.unlink() for p in (run / "serve").glob("*")]
    proc, url = _start_server(run, max_wait_ms=2)
    accepted = [0] * clients
    per_client = requests // clients

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as http:
            for k in range(per_client):
                try:
                    r = http.post("/v1/predict", json={"texts": [f"acme beats record {i} {k}"]})
                except httpx.HTTPError:
                    return  # the server closed: the rest are refused, not lost
                accepted[i] += int(r.status_code == 200)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while sum(accepted) < requests // 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    output = proc.communicate(timeout=120)[0]
    with sqlite3.connect(run / "serve" / "predictions.sqlite") as db:
        logged = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
    lost = max(0, sum(accepted) - logged)
    # uvicorn re-raises SIGTERM once it has shut down cleanly: -15 is a clean exit too.
    return row(sum(accepted), lost, int(proc.returncode not in (0, -signal.SIGTERM)), traceback_in(output), started,
               accepted=sum(accepted), logged=logged)


def drill_explain_flood(work: Path, bert: Path, clients: int = 30) -> dict:
    """30 clients flood /v1/explain while /healthz is probed: every probe under 1 s, the flood
    answered 200 or 503 with Retry-After, and /v1/predict still answers."""
    import httpx

    started = time.time()
    proc, url = _start_server(work / "reference", explain_queue=4)
    statuses: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=url, timeout=300, headers={"X-API-Key": API_KEY}) as http:
            for _ in range(4):
                statuses.append(http.post("/v1/explain", json={"text": "acme beats record profit"}).status_code)

    threads = [threading.Thread(target=flood) for _ in range(clients)]
    for t in threads:
        t.start()
    probes, predict_s = [], []
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as http:
        while any(t.is_alive() for t in threads):
            t0 = time.monotonic()
            http.get("/healthz")
            probes.append(time.monotonic() - t0)
            t0 = time.monotonic()
            http.post("/v1/predict", json={"texts": ["acme beats"]})
            predict_s.append(time.monotonic() - t0)
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    slow = sum(p >= 1.0 for p in probes)
    wrong = slow + int(not set(statuses) <= {200, 503})
    return row(len(statuses) + len(probes), 0, wrong, traceback_in(output), started,
               health_probes=len(probes), health_max_s=round(max(probes), 3),
               predict_max_s=round(max(predict_s), 3), explained=statuses.count(200), refused_503=statuses.count(503))


def _kill_when(child: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    """kill -9 ``child`` as soon as ``path`` exists (or it ends, or ``timeout`` passes)."""
    deadline = time.time() + timeout
    while not path.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.communicate()


def drill_export_kill(work: Path, bert: Path, trials: int) -> dict:
    """kill -9 during `export` (hf, onnx): the earlier export stays whole; a user's own
    NAME.partial folder is untouched; the leftover never blocks `train --overwrite` or the next
    export."""
    started = time.time()
    run = work / "reference"
    lost = wrong = tracebacks = 0
    users = work / "deploy.partial"
    users.mkdir(exist_ok=True)
    (users / "notes.txt").write_text("mine")
    for trial in range(trials):
        fmt = ("hf", "onnx")[trial % 2]
        out = work / f"deploy_{fmt}"
        if not out.exists():
            first = fintune("export", str(run), "--format", fmt, "--output", str(out))
            tracebacks += traceback_in(first.stdout + first.stderr)
        before = sorted(p.name for p in out.iterdir())
        child = spawn("export", str(run), "--format", fmt, "--output", str(out))
        time.sleep(random.Random(trial).uniform(0.5, 3.0))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        wrong += int(sorted(p.name for p in out.iterdir()) != before)
        again = fintune("export", str(run), "--format", fmt, "--output", str(out))
        tracebacks += traceback_in(again.stdout + again.stderr)
        wrong += int(again.returncode != 0)
        lost += int(not (users / "notes.txt").exists())
    inside = work / "inside"
    if not inside.exists():
        fintune("train", str(config(work, bert, inside, "inside", epochs=1)), "--no-progress")
    child = spawn("export", str(inside), "--format", "onnx")
    time.sleep(2.0)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    again = fintune("train", str(config(work, bert, inside, "inside", epochs=1)), "--overwrite", "--no-progress")
    tracebacks += traceback_in(again.stdout + again.stderr)
    wrong += int(again.returncode != 0)
    return row(trials + 1, lost, wrong, tracebacks, started)


def drill_distill_kill(work: Path, bert: Path, trials: int) -> dict:
    """kill -9 of `distill` at its first checkpoint, then `distill --resume`: it finishes, with
    its teacher recorded; `train --resume` on its config is refused in one line."""
    started = time.time()
    wrong = tracebacks = 0
    for trial in range(trials):
        out = work / f"student_{trial}"
        args = ["distill", "--teacher", str(work / "reference"), "--student", str(bert), "--output-dir", str(out),
                "--no-progress", "train.epochs=4", "train.checkpoint_every=3", "train.num_threads=1"]
        _kill_when(spawn(*args), out / "checkpoint.pt")
        alone = fintune("train", str(out / "config.yaml"), "--resume", "--no-progress")
        tracebacks += traceback_in(alone.stdout + alone.stderr)
        wrong += int(alone.returncode != 2)
        resumed = fintune(*args, "--resume")
        tracebacks += traceback_in(resumed.stdout + resumed.stderr)
        meta = out / "model" / "fintune.json"
        wrong += int(resumed.returncode != 0 or not meta.exists() or "distilled" not in json.loads(meta.read_text()))
    return row(trials, 0, wrong, tracebacks, started)


def drill_tune_kill(work: Path, bert: Path, trials: int) -> dict:
    """kill -9 of `tune` in its first trial; the rerun (after the heartbeat grace period) marks
    that trial failed and completes the search."""
    import optuna

    from fintune.workflows.tune import GRACE_S, STUDY

    started = time.time()
    wrong = tracebacks = 0
    for trial in range(trials):
        out = work / f"tuned_{trial}"
        cfg = config(work, bert, out, f"tuned_{trial}", epochs=3)
        raw = yaml.safe_load(cfg.read_text())
        raw["tune"] = {"trials": 2, "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}}}
        cfg.write_text(yaml.safe_dump(raw))
        _kill_when(spawn("tune", str(cfg), "--no-progress"), out / "trials" / "000" / "steps.jsonl")
        time.sleep(GRACE_S + 2)
        again = fintune("tune", str(cfg), "--no-progress")
        tracebacks += traceback_in(again.stdout + again.stderr)
        study = optuna.load_study(study_name="fintune", storage=f"sqlite:///{out / STUDY}")
        states = [t.state for t in study.trials]
        wrong += int(again.returncode != 0 or optuna.trial.TrialState.RUNNING in states
                     or states.count(optuna.trial.TrialState.COMPLETE) < 2)
    return row(trials, 0, wrong, tracebacks, started)


def drill_links(work: Path, bert: Path, trials: int) -> dict:
    """Links planted where a run writes (.fintune-run, steps.jsonl, metrics.jsonl): --resume and
    --overwrite refuse in one line, and the files they point to keep their contents."""
    import shutil

    started = time.time()
    lost = wrong = tracebacks = 0
    names = [".fintune-run", "steps.jsonl", "metrics.jsonl"]
    for trial in range(trials):
        run = work / f"linked_{trial}"
        shutil.copytree(work / "reference", run, dirs_exist_ok=True)
        name = names[trial % len(names)]
        outside = work / f"precious_{trial}.txt"
        outside.write_text("keep me")
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(outside)
        cfg = config(work, bert, run, f"linked_{trial}")
        for flag in ("--resume", "--overwrite"):
            done = fintune("train", str(cfg), flag, "--no-progress")
            tracebacks += traceback_in(done.stdout + done.stderr)
            wrong += int(done.returncode != 2)
        lost += int(outside.read_text() != "keep me")
    return row(trials * 2, lost, wrong, tracebacks, started)


def drill_alias_bomb(work: Path, bert: Path, trials: int) -> dict:
    """A 1 KB config whose YAML aliases expand to 3.5 billion strings, under a 2 GB memory cap:
    refused in one line (exit 2), well inside the cap."""
    started = time.time()
    wrong = tracebacks = 0
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 11)]
    bomb = work / "bomb.yaml"
    bomb.write_text("data:\n  label_map: &m\n" + "".join(f"    {line}\n" for line in lines))
    for _ in range(trials):
        done = subprocess.run(["bash", "-c", f"ulimit -v 2000000; {sys.executable} -m fintune data check {bomb}"],
                              capture_output=True, text=True, timeout=300)
        tracebacks += traceback_in(done.stdout + done.stderr)
        wrong += int(done.returncode != 2 or "aliases" not in done.stdout + done.stderr)
    return row(trials, 0, wrong, tracebacks, started)


def drill_corrupt_listing(work: Path, bert: Path, trials: int) -> dict:
    """Damaged runs (truncated metrics.json, a list for metrics, a YAML error, an alias bomb in a
    received config.yaml) beside a good one: `fintune runs` lists the good one, skips each
    damaged one with a warning line, exits 0."""
    import shutil

    started = time.time()
    wrong = tracebacks = 0
    damage = {"metrics.json": ['{"validation": {"accur', "[1, 2, 3]"],
              "config.yaml": ["task: [classification\n", "x: &a [1, *a]\n"]}
    cases = [(f, text) for f, texts in damage.items() for text in texts]
    for trial in range(trials):
        root = work / f"listing_{trial}"
        shutil.copytree(work / "reference", root / "good", dirs_exist_ok=True)
        shutil.copytree(work / "reference", root / "damaged", dirs_exist_ok=True)
        file, text = cases[trial % len(cases)]
        (root / "damaged" / file).write_text(text)
        done = fintune("runs", str(root), "--output", str(root / "runs.csv"))
        tracebacks += traceback_in(done.stdout + done.stderr)
        listed = (root / "runs.csv").read_text() if (root / "runs.csv").exists() else ""
        wrong += int(done.returncode != 0 or "good" not in listed or "damaged" in listed
                     or "skipping" not in done.stdout + done.stderr)
    return row(trials, 0, wrong, tracebacks, started)


def drill_disk_full(work: Path, bert: Path, trials: int) -> dict:
    """Training, predict and export onto a 8 MiB tmpfs that fills up: exit 2 with one line naming
    the path, no temporary file left, the earlier files intact. Needs root (mount); else the
    row says it was skipped."""
    import shutil

    started = time.time()
    disk = work / "disk"
    disk.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        return row(0, 0, 0, 0, started, skipped="cannot mount a tmpfs here (needs root)")
    lost = wrong = tracebacks = 0
    failures: list[dict] = []
    try:
        for trial in range(trials):
            filler = disk / "filler"
            keep = disk / "earlier.txt"
            keep.write_text("earlier output")
            free = shutil.disk_usage(disk).free
            filler.write_bytes(b"\0" * max(free - (64 << 10), 0))
            many = work / "many.csv"  # 5,000 rows: about 400 KB of predictions, more than is left
            if not many.exists():
                sentiment_frame(5000, seed=3).to_csv(many, index=False)
            jobs = [("export", str(work / "reference"), "--output", str(disk / "hf")),
                    ("predict", str(work / "reference"), "--input", str(many), "--output",
                     str(disk / "scored.csv")),
                    ("train", str(config(work, bert, disk / "run", f"disk_{trial}", epochs=1)), "--no-progress")]
            for job in jobs:
                done = fintune(*job)
                text = done.stdout + done.stderr
                tracebacks += traceback_in(text)
                bad = done.returncode != 2 or "no space left" not in text.lower()
                wrong += int(bad)
                if bad:
                    failures.append({"job": job[0], "code": done.returncode, "tail": text[-400:]})
            left = [p.name for p in disk.rglob("*") if ".partial-" in p.name or ".tmp-" in p.name]
            wrong += len(left)
            lost += int(keep.read_text() != "earlier output")
            filler.unlink()
            shutil.rmtree(disk / "run", ignore_errors=True)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    return row(trials * 3, lost, wrong, tracebacks, started, failures=failures)


DRILLS = {
    "train_kill": lambda w, b, n: drill_train_kill(w, b, n),
    "predict_kill": lambda w, b, n: drill_predict_kill(w, b, max(1, n // 2)),
    "concurrent_train": lambda w, b, n: drill_concurrent(w, b, 2),
    "overwrite_crash": lambda w, b, n: drill_overwrite_crash(w, b, 2),
    "server_sigterm": lambda w, b, n: drill_server_sigterm(w, b, 4000),
    "explain_flood": lambda w, b, n: drill_explain_flood(w, b),
    "export_kill": lambda w, b, n: drill_export_kill(w, b, 4),
    "distill_kill": lambda w, b, n: drill_distill_kill(w, b, 2),
    "tune_kill": lambda w, b, n: drill_tune_kill(w, b, 1),
    "links": lambda w, b, n: drill_links(w, b, 3),
    "alias_bomb": lambda w, b, n: drill_alias_bomb(w, b, 2),
    "corrupt_listing": lambda w, b, n: drill_corrupt_listing(w, b, 4),
    "disk_full": lambda w, b, n: drill_disk_full(w, b, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", default=",".join(DRILLS))
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials of training (predict: half)")
    args = parser.parse_args()
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bert = tiny_bert(work / "tiny_bert")
        names = args.drills.split(",")
        if "train_kill" not in names:  # the other drills use its reference run
            done = fintune("train", str(config(work, bert, work / "reference", "reference")), "--no-progress")
            assert done.returncode == 0, done.stdout + done.stderr
        for name in names:
            print(f"drill {name} ...", flush=True)
            results[name] = DRILLS[name](work, bert, args.trials)
            RESULT.parent.mkdir(parents=True, exist_ok=True)
            RESULT.write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(n) for n in results) + 2
    print(f"{'drill':<{width}}" + "".join(f"{k:>15}" for k in KEYS))
    for name, r in results.items():
        print(f"{name:<{width}}" + "".join(f"{r[k]!s:>15}" for k in KEYS))


if __name__ == "__main__":
    main()
