"""Writes on a full disk: one line naming the path (exit 2), nothing temporary left, the
previous files intact. Runs on a small tmpfs where the test may mount one (root on Linux);
skipped cleanly elsewhere."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fintune.cli import app
from fintune.errors import FintuneError
from fintune.training.checkpoint import atomic_save, load
from tests.conftest import sentiment_frame, write_config


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at tmp_path/disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root on Linux)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until ``leave`` bytes are free."""
    import shutil

    free = shutil.disk_usage(disk).free
    with open(disk / f"filler-{uuid.uuid4().hex[:6]}", "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))


def leftovers(disk: Path) -> list[str]:
    return [p.name for p in disk.rglob("*") if ".tmp-" in p.name or ".partial-" in p.name]


def test_a_checkpoint_on_a_full_disk(small_disk: Path) -> None:
    path = small_disk / "checkpoint.pt"
    atomic_save({"w": torch.zeros(1000)}, path)
    fill(small_disk, 64 * 1024)
    with pytest.raises(FintuneError, match=rf"checkpoint {path}: no space left on the device"):
        atomic_save({"w": torch.zeros(500_000)}, path)  # 2 MB into 64 KB
    assert leftovers(small_disk) == []
    assert load(path)["w"].shape == (1000,)  # the previous one, intact


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, tiny_bert: Path) -> Path:
    from fintune import api

    folder = tmp_path_factory.mktemp("full_disk")
    sentiment_frame(120).to_csv(folder / "train.csv", index=False)
    config = write_config(folder / "c.yaml", tiny_bert, folder / "train.csv", folder / "run", train={"epochs": 1})
    return api.train(config, show_progress=False).run_dir


def test_predict_and_export_on_a_full_disk(small_disk: Path, small_run: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["acme beats the quarter and raises guidance"] * 3000})
    frame.to_csv(tmp_path / "in.csv", index=False)
    fill(small_disk, 32 * 1024)
    out = CliRunner().invoke(app, ["predict", str(small_run), "--input", str(tmp_path / "in.csv"),
                                   "--output", str(small_disk / "out.csv"), "--no-progress"])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert f"{small_disk / 'out.csv'}: no space left on the device" in " ".join(out.output.split())
    out = CliRunner().invoke(app, ["export", str(small_run), "--output", str(small_disk / "hf")])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert "no space left on the device" in out.output and str(small_disk / "hf") in " ".join(out.output.split())
    assert leftovers(small_disk) == [] and not (small_disk / "out.csv").exists()


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    """A library that writes 0600 (safetensors does) does not make a model the team cannot read."""
    import os

    from fintune.files import atomic_folder

    old = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "model", marker="x") as tmp:
            (tmp / "weights.bin").write_bytes(b"w")
            os.chmod(tmp / "weights.bin", 0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "model" / "weights.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755
