"""The run folder: its file names, the lifecycle of a run (check, start, finish), and what a
finished run holds (metrics, splits).

A run folder looks like this::

    config.yaml        the resolved config
    data_check.json    the data quality report
    splits.json        which file rows went to which split (the audit trail)
    checkpoint.pt      while training; removed when the run finishes
    metrics.json       written last: its presence means the run finished
    model/             the servable model (Hugging Face format) and its card
    eval/<split>/      metrics, plots and a report per held-out split
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fintune.config import RunConfig, dump_config, read_yaml_file
from fintune.console import console
from fintune.data import PreparedData
from fintune.errors import ConfigError, RunBusy
from fintune.files import atomic_folder, cleanup_partials, swap_in, writable_parent, write_text
from fintune.evaluation.modelcard import render_model_card
from fintune.predictors import FintuneModel
from fintune.training.distributed import is_main_process
from fintune.training.loop import BEST, CHECKPOINT

from fintune.rundir.names import (  # noqa: F401  (the file names, read through this package too)
    CONFIG, CORPUS, DATA_CHECK, EVAL, LEADERBOARD, MARKER, METRICS, MODEL, OWNED, OWNED_PATTERNS, RESUME_FREE, RUN_MARKERS, SPLITS,
)
from fintune.rundir.results import (  # noqa: F401  (re-exported)
    load_split, next_commands, print_summary, read_metrics, read_run_files, split_names,
)

@dataclass
class RunResult:
    """Where a run lives and what it measured."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def model_dir(self) -> Path:
        return self.run_dir / MODEL

    def _card(self) -> tuple[str, list[tuple[str, str]]]:
        from fintune.models.summary import metric_lines

        config = read_yaml_file(self.run_dir / CONFIG) if (self.run_dir / CONFIG).is_file() else {}
        task = str((config or {}).get("task", "classification"))
        seconds = (self.metrics.get("training") or {}).get("train_seconds")
        rows = [("task", task), *metric_lines(self.metrics, task)]
        if isinstance(seconds, (int, float)):
            rows.append(("trained in", f"{seconds:,.0f} s"))
        return f"RunResult: {self.run_dir}", rows + [("model", str(self.model_dir))]

    def __repr__(self) -> str:  # the dataclass's would print every metric of every split
        from fintune.models.summary import card_text

        return card_text(*self._card())

    def _repr_html_(self) -> str:
        from fintune.models.summary import card_html

        return card_html(*self._card())


def is_run(folder: Path) -> bool:
    """``folder`` holds a fintune run (marked, or a run from before the marker existed)."""
    if (folder / MARKER).is_file():
        return True
    return (folder / CONFIG).is_file() and any((folder / n).exists() for n in (METRICS, CHECKPOINT, MODEL))


def owned_links(folder: Path) -> list[str]:
    """Names in ``folder`` that fintune writes to and that are symbolic links (written through,
    they would change files outside the run)."""
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir() if e.is_symlink()
                  and (e.name in OWNED or any(fnmatch.fnmatch(e.name, p) for p in OWNED_PATTERNS)))


def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that fintune did not write there."""
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir()
                  if e.name not in OWNED and not any(fnmatch.fnmatch(e.name, p) for p in OWNED_PATTERNS))


def staging_of(path: Path) -> Path:
    """Where ``--overwrite`` trains the new run until it replaces the old one."""
    return path.with_name(f".{path.name}.next")


def live_folder(path: Path) -> Path:
    """Where the run at ``path`` is training now: its staging folder during --overwrite."""
    staging = staging_of(path)
    return staging if staging.is_dir() else path


class RunFolder:
    """One run's folder: what training writes, in the order it writes it.

    ``path`` is where this run trains: ``final`` itself, or, when it replaces a finished run
    (``--overwrite``), a staging folder beside it that :meth:`finish` swaps in, so the old
    model survives a crash of the new training.
    """

    def __init__(self, final: Path) -> None:
        # Absolute (links kept): "." and "runs/x" name their folder, and siblings exist for both.
        self.final = Path(os.path.abspath(final))
        self.path = self.final
        self._lock: Any = None
        # Recorded in the marker: how the run is trained beyond its config (a distillation's
        # teacher), so that a resume by other means is refused instead of training without it.
        self.origin: dict[str, Any] = {}

    def eval_dir(self, split: str) -> Path:
        return self.path / EVAL / split

    @property
    def holds_run(self) -> bool:
        return self.final.is_dir() and any((self.final / name).exists() for name in RUN_MARKERS)

    @property
    def finished(self) -> bool:
        """Finished, with nothing left to resume."""
        return ((self.final / METRICS).exists() and not (self.final / CHECKPOINT).exists()
                and not (staging_of(self.final) / CHECKPOINT).exists())

    # ------------------------------------------------------------ before training

    def lock(self) -> None:
        """Hold the run's lock until the process ends: a second process on the same run fails at
        once, naming the holder."""
        lock_path = self.final.with_name(f".{self.final.name}.lock")
        writable_parent(lock_path, "output_dir")
        handle = open(lock_path, "a+", encoding="utf-8")
        holder = _acquire(handle)
        if holder is not None:
            handle.close()
            raise RunBusy(f"run directory {self.final} is in use by process {holder} (lock {lock_path}); "
                          "wait for it to finish, or stop it first")
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    @contextmanager
    def opened(self, cfg: BaseModel, *, resume: bool, overwrite: bool, force: bool) -> Iterator[RunResult | None]:
        """Hold the run for one training: lock it (first process only), refuse what would lose
        files, check a resumed config; yields the finished result when ``resume`` finds nothing
        left to do, else None. The lock is released on leaving."""
        main = is_main_process()  # several processes: only the first locks, checks and writes the run folder
        if main:
            self.lock()
        try:
            self.check(resume=resume, overwrite=overwrite, refuse=main)
            if resume and self.finished:
                console.print(f"{self.final} finished already; nothing to resume")
                yield RunResult(self.final, read_metrics(self.final))
                return
            if resume and main:
                self.check_resume(cfg, force=force)
            yield None
        finally:
            self.unlock()

    def unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def check(self, *, resume: bool, overwrite: bool, refuse: bool = True) -> None:
        """Refuse what would lose a user's files: training over a run unless asked to continue or
        replace it, replacing a folder that is not a fintune run, or a path that is not a folder;
        and choose where this run trains. ``refuse`` False (the other processes of a multi-process
        run, which may look after the first one started writing) only chooses the folder."""
        final = self.final
        if final.exists() and not final.is_dir():
            raise ConfigError(f"output_dir {final} is a file, not a folder; set output_dir to a folder")
        for folder in (final, staging_of(final)):
            links = owned_links(folder)
            if links:
                raise ConfigError(f"{folder} holds symbolic links where fintune writes its own files "
                                  f"({_names(links)}); fintune never writes through a link out of a run folder. "
                                  "Remove the links, or set output_dir to a new folder")
        if resume:
            if (staging_of(final) / CHECKPOINT).exists():
                self.path = staging_of(final)  # an --overwrite run that stopped: it continues where it was
            return
        if refuse:
            self._refuse_loss(overwrite)
        if overwrite and is_run(final) and (final / METRICS).exists():
            self.path = staging_of(final)  # a finished model to keep until the new one is done

    def _refuse_loss(self, overwrite: bool) -> None:
        final = self.final
        if self.holds_run and not overwrite:
            raise ConfigError(
                f"run directory {final} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or set output_dir to a new folder"
            )
        clashing = sorted(OWNED - {DATA_CHECK} & {e.name for e in final.iterdir()}) \
            if final.is_dir() and not is_run(final) else []
        if clashing:
            raise ConfigError(f"{final} is not a fintune run and holds files a run would overwrite "
                              f"({_names(clashing)}); nothing was touched. Set output_dir to a new folder")
        foreign = foreign_files(final) if overwrite else []
        if foreign and not is_run(final):
            raise ConfigError(f"--overwrite replaces fintune runs only, and {final} is not one (it holds "
                              f"{_names(foreign)}); nothing was touched. Set output_dir to a new folder")
        if foreign:
            raise ConfigError(f"--overwrite would delete files fintune did not write in {final} "
                              f"({_names(foreign)}); move them out, or set output_dir to a new folder")

    def recorded_origin(self) -> dict[str, Any]:
        """What the marker of a started run records beyond the config (empty if nothing)."""
        path = live_folder(self.final) / MARKER
        try:
            marker = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in marker.items() if k not in ("started", "pid")} if isinstance(marker, dict) else {}

    def check_resume(self, cfg: BaseModel, *, force: bool) -> None:
        """``--resume`` continues the stored config: a change in anything that changes the result is
        refused, naming the keys; with ``force`` it proceeds and both configs are kept."""
        stored = self.path / CONFIG
        if not stored.is_file():
            return
        try:
            old = read_yaml_file(stored) or {}
        except ConfigError:
            return
        try:  # in today's shape: a config written before model had a section per kind spelt every kind's keys
            old = type(cfg).model_validate(old).model_dump(mode="json")
        except ValueError:
            pass  # compared as written; what no longer validates shows as a change
        changed = config_changes(old, cfg.model_dump(mode="json"))
        if not changed:
            return
        listing = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed[:8])
        if not force:
            raise ConfigError(f"--resume with a changed config ({listing}); a resumed run must train as it "
                              "started. Resume without the changes, train a new run (a new output_dir), or pass "
                              "--resume --force to continue anyway (both configs are kept)")
        keep = self.path / f"config.before-resume-{time.strftime('%Y%m%dT%H%M%S')}.yaml"
        shutil.copyfile(stored, keep)
        console.print(f"[yellow]resuming with a changed config[/] ({listing}); the stored one is kept in {keep}")

    # ------------------------------------------------------------ training

    def start(self, cfg: BaseModel, report: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Make the folder and write the config and data report.

        Called once data and backbone are known good, so a bad input leaves no folder behind.
        An ``--overwrite`` of a run starts a fresh staging folder; the old run stays in place.
        """
        if not is_main_process():
            return
        if self.path != self.final and not resume:
            shutil.rmtree(self.path, ignore_errors=True)  # a staging folder a crash left behind
        elif overwrite and not resume and self.final.is_dir():
            # Only fintune's own files are here (check() said so): a crashed run, a data report.
            for name in OWNED & {e.name for e in self.final.iterdir()} - {DATA_CHECK}:
                target = self.final / name
                shutil.rmtree(target) if target.is_dir() else target.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        cleanup_partials(self.path)
        write_text(self.path / MARKER, json.dumps({"started": time.time(), "pid": os.getpid(), **self.origin}))
        write_text(self.path / CONFIG, dump_config(cfg))
        write_text(self.path / DATA_CHECK, json.dumps(report, indent=2))

    def write_splits(self, cfg: RunConfig, data: PreparedData) -> None:
        """Which file rows went to which split: the audit trail, and what reports reload."""
        files = {"train": cfg.data.train, "validation": cfg.data.validation or cfg.data.train,
                 "test": cfg.data.test or cfg.data.train}
        record = {name: {"file": files[name], "rows": [int(r) for r in ex.rows]}
                  for name, ex in (("train", data.train), ("validation", data.validation), ("test", data.test))
                  if ex is not None and ex.rows is not None}
        write_text(self.path / SPLITS, json.dumps(record))

    def finish(self, cfg: RunConfig, model: FintuneModel, metrics: dict[str, Any], training: dict[str, Any],
               report: dict[str, Any]) -> RunResult:
        """Save the servable model, its card and the metrics (written last: a run with metrics.json
        is complete); drop the checkpoints; swap a staging folder in."""
        metrics["training"] = training

        def write(tmp: Path) -> None:
            model.save(tmp)
            write_text(tmp / "README.md", render_model_card(cfg, report, metrics, training, model))
        return self.complete(write, metrics, next_commands(model))

    def complete(self, write_model: Callable[[Path], None], metrics: dict[str, Any],
                 commands: list[str] | None = None, marker: str = "fintune.json") -> RunResult:
        """Write the model folder with ``write_model`` (into a temporary folder that then replaces
        ``model/``; ``marker`` is the file that shows an old one is fintune's), then the metrics,
        drop the checkpoints and swap a staging folder in."""
        with atomic_folder(self.path / MODEL, "model folder", marker=marker) as tmp:
            write_model(tmp)
        write_text(self.path / METRICS, json.dumps(metrics, indent=2))
        for name in (CHECKPOINT, BEST):
            (self.path / name).unlink(missing_ok=True)
        cleanup_partials(self.path)
        if self.path != self.final:
            swap_in(self.path, self.final)
            self.path = self.final
        print_summary(metrics, self.final, commands)
        return RunResult(self.final, metrics)


def _acquire(handle: Any) -> str | None:
    """Take the lock on ``handle``: None once taken, else the holder's PID as written."""
    deadline = time.monotonic() + 10
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            # A holder killed a moment ago releases the lock when the kernel reaps it: wait for
            # that, but never for a process that is still running.
            if not _dying(holder) or time.monotonic() > deadline:
                return holder
            time.sleep(0.05)


def _dying(pid_text: str) -> bool:
    """The process is gone or a zombie (killed, not yet reaped)."""
    if not pid_text.isdigit():
        return False
    try:
        state = Path(f"/proc/{pid_text}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key, old, new) for every leaf that differs and may change the result."""
    out = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}{key}"
        if any(dotted == free or dotted.startswith(free + ".") for free in RESUME_FREE):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, dotted + ".")
        elif a != b:
            out.append((dotted, a, b))
    return out


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


