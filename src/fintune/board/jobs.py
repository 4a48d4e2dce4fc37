"""Worker processes the board starts: training runs and HTTP servers.

Each job is a ``fintune`` CLI process in its own session, so it outlives a page reload (and
the board itself); what the page shows is read back from the run directory, so every
browser tab sees the same run. The board's own records (process ids, logs) live in its
home folder, beside the runs: a fresh run may replace its directory whole. Stop sends SIGTERM: training checkpoints after its current
step and exits (resumable), the server finishes in-flight requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from fintune.rundir import live_folder
from fintune.training import loop

PLOTTED = ("loss", "micro_f1", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "mse", "mae", "r2")  # validation curves


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A finished child of this board that was not reaped yet is a zombie: not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


class Jobs:
    """Start, stop and read the state of the board's worker processes; records under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[int, subprocess.Popen] = {}  # reaped here when they end

    def _record(self, kind: str, run_dir: Path) -> Path:
        return self.home / kind / f"{run_dir.name}.json"

    def log(self, run_dir: Path, kind: str = "train") -> Path:
        """The output of the run's training (or server) process."""
        return self.home / "logs" / f"{run_dir.name}.{kind}.log"

    def _spawn(self, args: list[str], log: Path) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "fintune", *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[proc.pid] = proc
        return proc.pid

    def _reap(self) -> None:
        for pid, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[pid]

    def train(self, config: Path, run_dir: Path, resume: bool) -> int:
        """Start ``fintune train CONFIG`` (``--resume`` to continue a stopped run)."""
        args = ["train", str(config), "--no-progress", "--resume" if resume else "--overwrite"]
        if not resume:
            self.log(run_dir).unlink(missing_ok=True)
        pid = self._spawn(args, self.log(run_dir))
        self._write(self._record("jobs", run_dir), {"pid": pid, "started": time.time(), "args": args})
        return pid

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")

    @staticmethod
    def _pid(path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if _alive(record["pid"]) else None

    def stop(self, run_dir: Path) -> bool:
        """Ask the run's training process to checkpoint and stop; False when none runs."""
        pid = self.training_pid(run_dir)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def training_pid(self, run_dir: Path) -> int | None:
        self._reap()
        record = self._pid(self._record("jobs", run_dir))
        return record["pid"] if record else None

    def status(self, run_dir: Path) -> str:
        """running, finished, stopped (resumable), failed, or new."""
        if self.training_pid(run_dir) is not None:
            return "running"
        if (run_dir / "metrics.json").exists():
            return "finished"
        if (live_folder(run_dir) / loop.CHECKPOINT).exists():
            return "stopped (resumable)"
        if self._record("jobs", run_dir).exists():
            return "failed"
        return "new"

    def serve(self, run_dir: Path, port: int) -> int:
        """Start ``fintune serve RUN --port PORT`` (loopback only)."""
        pid = self._spawn(["serve", str(run_dir), "--port", str(port)], self.log(run_dir, "serve"))
        self._write(self._record("servers", run_dir), {"pid": pid, "port": port})
        return pid

    def server(self, run_dir: Path) -> dict[str, Any] | None:
        """The run's server started by the board, while it runs."""
        self._reap()
        return self._pid(self._record("servers", run_dir))

    def stop_server(self, run_dir: Path) -> bool:
        info = self.server(run_dir)
        if info is None:
            return False
        os.kill(info["pid"], signal.SIGTERM)
        return True


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a worker's log (the error of a failed run ends up here)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def curves(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training loss per step, and each validation metric per evaluation (long format)."""
    run_dir = live_folder(run_dir)  # an --overwrite trains beside the old run until it finishes
    steps = loop.read_history(run_dir / loop.STEPS)
    loss = pd.DataFrame([{"step": r["step"], "loss": r["loss"]} for r in steps], columns=["step", "loss"])
    rows = [{"step": r["step"], "metric": name, "value": value}
            for r in loop.read_history(run_dir / loop.HISTORY)
            for name, value in r["validation"].items() if name in PLOTTED and isinstance(value, (int, float))]
    return loss, pd.DataFrame(rows, columns=["step", "metric", "value"])


def progress_line(run_dir: Path) -> str:
    """'step 12 of 40, epoch 1, loss 0.5213, 27.1 samples/s' from the last step logged."""
    steps = loop.read_history(live_folder(run_dir) / loop.STEPS)
    if not steps:
        return "no steps yet"
    last = steps[-1]
    return (f"step {last['step']} of {last['total_steps']}, epoch {last['epoch']}, loss {last['loss']:.4f}, "
            f"{last['samples_per_s']:.1f} samples/s")
