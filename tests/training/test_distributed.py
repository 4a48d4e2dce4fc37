"""Two CPU processes (gloo) train the same model as one process with the same global batch."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from fintune import api

TRAIN = {"epochs": 1, "max_steps": 5, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32",
         "early_stopping": None, "warmup_fraction": 0.0}


def test_two_processes_match_one(make_config) -> None:
    # Dropout off: each process would draw its own masks, and the comparison is of the arithmetic.
    single = api.train(make_config("single.yaml", model={"dropout": 0.0}, train=TRAIN), show_progress=False).run_dir
    config = make_config("ddp.yaml", model={"dropout": 0.0}, train=TRAIN)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "fintune", "train", str(config), "--nproc", "2", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = single.parent / "ddp"
    training = json.loads((ddp / "metrics.json").read_text())["training"]
    assert training["processes"] == 2 and training["ranks_in_sync"] is True
    assert training["global_step"] == 5
    one, two = load_file(str(single / "model" / "model.safetensors")), load_file(str(ddp / "model" / "model.safetensors"))
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-4, worst
    assert not torch.equal(one["classifier.weight"], torch.zeros_like(one["classifier.weight"]))


def test_a_two_process_run_resumes_in_one(make_config) -> None:
    """Steps count global batches, so a checkpoint of 2 processes continues in 1."""
    import signal
    import time

    train = {**TRAIN, "max_steps": 10, "checkpoint_every": 3}
    reference = api.train(make_config("ref.yaml", model={"dropout": 0.0}, train=train), show_progress=False)
    config = make_config("killed.yaml", model={"dropout": 0.0}, train=train)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.Popen([sys.executable, "-m", "fintune", "train", str(config), "--nproc", "2", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = reference.run_dir.parent / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # torchrun's workers run in process groups of their own: killing the launcher's group leaves
    # them training (the run folder's lock shows it), so they are killed by what they run.
    _kill_processes_running(str(config))
    assert ckpt.exists()
    resumed = api.train(config, resume=True, show_progress=False)
    assert resumed.metrics["training"]["resumed_from_step"] >= 3
    assert resumed.metrics["training"]["global_step"] == reference.metrics["training"]["global_step"] == 10
    one = load_file(str(reference.run_dir / "model" / "model.safetensors"))
    two = load_file(str(resumed.run_dir / "model" / "model.safetensors"))
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-4


def _kill_processes_running(argument: str) -> None:
    import signal

    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argument.encode() in command and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _running(proc):
                time.sleep(0.05)


def _running(proc: Path) -> bool:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_each_process_share_weights_to_the_global_mean() -> None:
    import numpy as np

    from fintune.training.distributed import Distributed

    ranks = []
    for rank in range(2):
        dist = object.__new__(Distributed)  # the arithmetic only; no process group
        dist.rank, dist.world = rank, 2
        ranks.append(dist)
    shares = [d.share(np.arange(5)) for d in ranks]
    assert [list(rows) for rows, _ in shares] == [[0, 2, 4], [1, 3]]
    assert sum(weight for _, weight in shares) / 2 == 1.0  # mean over processes of the weights
    lone = [d.share(np.array([7])) for d in ranks]  # fewer rows than processes
    assert [list(rows) for rows, _ in lone] == [[7], [7]] and [w for _, w in lone] == [2.0, 0.0]


@pytest.mark.parametrize("engine", ["FSDP", "DEEPSPEED"])
def test_sharded_engines_are_refused_with_the_way_out(engine: str) -> None:
    from fintune.errors import ConfigError
    from fintune.training.distributed import check_engine

    with pytest.raises(ConfigError, match=f"asks for {engine}.*DDP only.*multi_node.yaml"):
        check_engine(engine)
    check_engine("MULTI_GPU")
    check_engine("MULTI_CPU")


def test_ray_train_two_workers_resume_and_match_one_process(make_config) -> None:
    """fintune train --engine ray: a run killed after a checkpoint resumes in 2 local CPU
    workers under Ray Train's TorchTrainer and ends as one process with the same global batch."""
    pytest.importorskip("ray.train")
    import signal

    import ray

    from fintune.engines.ray import train as ray_train

    train = {**TRAIN, "max_steps": 8, "checkpoint_every": 3}
    single = api.train(make_config("one.yaml", model={"dropout": 0.0}, train=train), show_progress=False).run_dir
    config = make_config("ray.yaml", model={"dropout": 0.0}, train=train)
    proc = subprocess.Popen([sys.executable, "-m", "fintune", "train", str(config), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = single.parent / "ray" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    try:
        run = ray_train(config, workers=2, resume=True)
    finally:
        ray.shutdown()
    training = json.loads((run / "metrics.json").read_text())["training"]
    assert training["processes"] == 2 and training["ranks_in_sync"] is True and training["global_step"] == 8
    assert training["resumed_from_step"] >= 3
    one, two = load_file(str(single / "model" / "model.safetensors")), load_file(str(run / "model" / "model.safetensors"))
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-4, worst
