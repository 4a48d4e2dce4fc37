"""Training into a log file: plain progress lines while it runs, not one bar at the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import write_config


def test_training_piped_to_a_file_logs_steps_and_evaluations(tiny_bert: Path, sentiment_csv: Path,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_bert, sentiment_csv, tmp_path / "run", train={"epochs": 2})
    log = tmp_path / "train.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "fintune", "train", str(config)], stdout=out,
                              stderr=subprocess.STDOUT, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                                          "FINTUNE_HOME": str(tmp_path / "home")})
    text = log.read_text()
    assert done.returncode == 0, text
    steps = [line for line in text.splitlines() if line.startswith("train step ")]
    total = steps[-1].split()[2].split("/")[1]
    assert len(steps) >= 5 and steps[-1].startswith(f"train step {total}/{total} (100%) epoch 2"), steps
    assert "samples/s" in steps[0] and " eta " in steps[0]
    assert sum(line.startswith("validation at step ") for line in text.splitlines()) == 2
    assert not any("━" in line and "samples/s" in line for line in text.splitlines())  # no bar drawn into the file
