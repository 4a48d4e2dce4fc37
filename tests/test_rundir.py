"""The run folder keeps the user's files: ownership, the lock, swaps, resume checks, OS errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fintune import api
from fintune.cli import app
from fintune.errors import ConfigError, RunBusy
from fintune.files import cleanup_partials
from fintune.predictors import FintuneModel
from fintune.rundir import RunFolder, staging_of
from tests.conftest import sentiment_frame, write_config

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _config(tmp_path: Path, tiny_bert: Path, output: Path, **train: object) -> Path:
    data = tmp_path / "train.csv"
    if not data.exists():
        sentiment_frame(120).to_csv(data, index=False)
    return write_config(tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml", tiny_bert, data, output,
                        train={"epochs": 1, **train})


def test_overwrite_refuses_a_folder_that_is_not_a_run_and_touches_nothing(tmp_path, tiny_bert) -> None:
    notes = tmp_path / "project"
    notes.mkdir()
    (notes / "notes.txt").write_text("my notes")
    sentiment_frame(30).to_csv(notes / "train.csv", index=False)
    config = _config(tmp_path, tiny_bert, notes)
    code, out = _cli("train", str(config), "--overwrite", "--no-progress")
    assert code == 2 and "replaces fintune runs only" in out and "notes.txt" in out and "Traceback" not in out
    assert sorted(p.name for p in notes.iterdir()) == ["notes.txt", "train.csv"]
    assert (notes / "notes.txt").read_text() == "my notes"


def test_overwrite_of_the_current_folder_is_refused(tmp_path, tiny_bert, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("a project")
    config = _config(tmp_path, tiny_bert, Path("."))
    code, out = _cli("train", str(config), "--overwrite", "--no-progress")
    assert code == 2 and "nothing was touched" in out
    assert (tmp_path / "README.md").read_text() == "a project"


def test_overwrite_keeps_files_a_user_put_into_a_run(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
    (run / "my_analysis.ipynb").write_text("{}")
    with pytest.raises(ConfigError, match="would delete files fintune did not write.*my_analysis.ipynb"):
        api.train(_config(tmp_path, tiny_bert, run), overwrite=True, show_progress=False)
    assert (run / "my_analysis.ipynb").exists() and (run / "model" / "fintune.json").exists()


def test_overwrite_trains_beside_the_old_run_so_a_crash_keeps_the_old_model(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
    texts = sentiment_frame(10, seed=3)["text"].tolist()
    before = FintuneModel.load(run).outputs(texts)
    # A long second training, killed while it trains in the staging folder.
    config = _config(tmp_path, tiny_bert, run, epochs=50, checkpoint_every=5)
    child = subprocess.Popen([sys.executable, "-m", "fintune", "train", str(config), "--overwrite", "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps = staging_of(run) / "steps.jsonl"
    deadline = time.monotonic() + 120
    while not (steps.exists() and steps.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert steps.exists(), "the second training never started"
    # The old run is whole: it loads and predicts exactly as before.
    assert (run / "metrics.json").exists()
    assert (FintuneModel.load(run).outputs(texts) == before).all()
    # A finished --overwrite replaces it and leaves no staging folder behind.
    result = api.train(_config(tmp_path, tiny_bert, run, epochs=2), overwrite=True, show_progress=False)
    assert result.run_dir == run and not staging_of(run).exists()
    assert json.loads((run / "metrics.json").read_text())["training"]["global_step"] > 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2


def test_a_second_process_on_the_same_run_fails_at_once_naming_the_holder(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    holder = RunFolder(run)
    holder.lock()
    try:
        started = time.monotonic()
        with pytest.raises(RunBusy, match=f"in use by process {os.getpid()}"):
            api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
        assert time.monotonic() - started < 5 and not run.exists()
    finally:
        holder.unlock()
    assert api.train(_config(tmp_path, tiny_bert, run), show_progress=False).metrics["test"]


def test_two_concurrent_trainings_one_runs_one_is_refused(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    config = _config(tmp_path, tiny_bert, run, epochs=3)
    procs = [subprocess.Popen([sys.executable, "-m", "fintune", "train", str(config), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outputs
    refused = next(o for p, o in zip(procs, outputs) if p.returncode == 2)
    assert "is in use by process" in refused or "already holds a run" in refused
    steps = [json.loads(line)["step"] for line in (run / "steps.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "steps of two trainings interleaved"


def test_resume_refuses_a_changed_config_naming_the_keys(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    config = _config(tmp_path, tiny_bert, run, epochs=2, checkpoint_every=2)
    with pytest.raises(Exception):  # stop early so a checkpoint is left: max_steps past the data
        api.train(config, ["train.max_steps=4"], show_progress=False, on_evaluate=_stop_at_first)
    assert (run / "checkpoint.pt").exists()
    with pytest.raises(ConfigError, match=r"changed config \(train.lr: 0.003 -> 0.0001.*--resume --force"):
        api.train(config, ["train.max_steps=4", "train.lr=1e-4"], resume=True, show_progress=False)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 0.003
    # Keys that do not change the result may differ; --force keeps both configs.
    result = api.train(config, ["train.max_steps=4", "train.lr=1e-4", "train.eval_batch_size=7"], resume=True,
                       force=True, show_progress=False)
    kept = list(run.glob("config.before-resume-*.yaml"))
    assert len(kept) == 1 and yaml.safe_load(kept[0].read_text())["train"]["lr"] == 0.003
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 1e-4
    assert result.metrics["training"]["resumed_from_step"] is not None


def _stop_at_first(step: int, metrics: dict) -> None:
    from fintune.errors import TrainingStopped

    raise TrainingStopped("stopped by the test after the first evaluation")


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".checkpoint.pt.tmp-{dead.pid}"
    live = tmp_path / f".checkpoint.pt.tmp-{os.getpid()}"
    user = tmp_path / "data.tmp-2024.csv"
    for path in (stale, live, user):
        path.write_text("x")
    assert cleanup_partials(tmp_path) == [stale]
    assert live.exists() and user.exists()


@pytest.mark.parametrize("case", ["file", "proc"])
def test_os_errors_on_output_dir_are_one_line_and_exit_2(tmp_path, tiny_bert, case) -> None:
    target = tmp_path / "taken"
    if case == "file":
        target.write_text("not a folder")
    else:
        target = Path("/proc/fintune-cannot-write-here")  # read-only, also for root
    code, out = _cli("train", str(_config(tmp_path, tiny_bert, target)), "--no-progress")
    assert code == 2 and out.count("\n") <= 2 and "Traceback" not in out, out
    assert ("is a file" in out) if case == "file" else ("cannot" in out)


def test_evaluate_and_predict_outputs_that_are_files_or_folders_are_refused(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
    data = tmp_path / "train.csv"
    (tmp_path / "a_file").write_text("x")
    code, out = _cli("evaluate", str(run), "--data", str(data), "--output", str(tmp_path / "a_file"))
    assert code == 2 and "is a file" in out and (tmp_path / "a_file").read_text() == "x"
    (tmp_path / "a_dir.csv").mkdir()
    code, out = _cli("predict", str(run), "--input", str(data), "--output", str(tmp_path / "a_dir.csv"))
    assert code == 2 and "is a folder" in out


def test_a_killed_predict_leaves_no_output_that_looks_complete(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
    big = tmp_path / "big.csv"
    pd.concat([sentiment_frame(500, seed=s) for s in range(8)]).to_csv(big, index=False)
    out = tmp_path / "scored.csv"
    for delay in (0.5, 3.0):
        child = subprocess.Popen([sys.executable, "-m", "fintune", "predict", str(run), "--input", str(big),
                                  "--output", str(out), "--batch-size", "8"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert not out.exists() or len(pd.read_csv(out)) == 4000
    api.predict(run, big, out, show_progress=False)
    assert len(pd.read_csv(out)) == 4000
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name and "scored" in p.name and
                _alive_pid(p.name)]


def _alive_pid(name: str) -> bool:
    pid = int(name.split(".partial-")[1].split("-")[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_evaluating_again_into_a_folder_leaves_no_file_of_the_earlier_evaluation(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    api.train(_config(tmp_path, tiny_bert, run), show_progress=False)
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    (out / "roc_curve.png").write_bytes(b"from an earlier binary evaluation")
    api.evaluate(run, tmp_path / "train.csv", output=out)
    assert (out / "mine.txt").read_text() == "kept"  # not fintune's: never touched
    assert not (out / "roc_curve.png").exists()  # three classes: no ROC curve this time
    assert {"metrics.json", "report.md", "confusion_matrix.png"} <= {p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_resume_after_a_kill_mid_write_of_the_logs_and_a_checkpoint(tmp_path, tiny_bert) -> None:
    run = tmp_path / "run"
    config = _config(tmp_path, tiny_bert, run, epochs=2, checkpoint_every=2)
    with pytest.raises(Exception):
        api.train(config, ["train.max_steps=6"], show_progress=False, on_evaluate=_stop_at_first)
    # What kill -9 can leave: half a line in each log, a checkpoint written halfway.
    for name in ("metrics.jsonl", "steps.jsonl"):
        with open(run / name, "a") as fh:
            fh.write('{"step": 99, "lo')
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / f".checkpoint.pt.tmp-{dead.pid}").write_bytes(b"half a checkpoint")
    result = api.train(config, ["train.max_steps=6"], resume=True, show_progress=False)
    assert result.metrics["training"]["global_step"] == 6
    for name in ("metrics.jsonl", "steps.jsonl"):
        lines = (run / name).read_text().splitlines()
        assert lines and all(json.loads(line)["step"] <= 6 for line in lines)
    assert not list(run.glob(".checkpoint.pt.tmp-*"))


def test_the_summary_recommends_only_commands_that_take_the_run() -> None:
    from fintune.rundir import next_commands

    class Classifier:
        has_scores, servable, chats = True, None, "answers with labels"

    class Generator:
        has_scores, servable, chats = False, "no probabilities", None

    class Tagger:
        has_scores, servable, chats = False, "entities in batch", "answers with tags"

    assert next_commands(Classifier()) == ["report", "serve", "predict"]
    assert next_commands(Generator()) == ["report", "serve", "chat", "predict"]
    assert next_commands(Tagger()) == ["predict"]


def _fake_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / ".fintune-run").write_text("{}")
    (folder / "config.yaml").write_text("task: classification\n")
    return folder


@pytest.mark.parametrize("name", [".fintune-run", "steps.jsonl", "metrics.jsonl", "metrics.json"])
def test_nothing_is_written_through_a_link_in_the_run_folder(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    run = _fake_run(tmp_path / "runs" / "r")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(outside)
    for resume, overwrite in ((True, False), (False, True)):
        with pytest.raises(ConfigError, match="symbolic links"):
            RunFolder(run).check(resume=resume, overwrite=overwrite)
    assert outside.read_text() == "keep me"


def test_history_appends_refuse_a_link(tmp_path: Path) -> None:
    from fintune.training.history import append_record as _append

    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "steps.jsonl").symlink_to(outside)
    with pytest.raises(OSError):
        _append(tmp_path / "steps.jsonl", {"step": 1})
    assert outside.read_text() == "keep me"


def test_a_plain_folder_with_files_a_run_writes_is_refused(tmp_path: Path, tiny_bert: Path) -> None:
    """A user's folder (no .fintune-run) that happens to hold splits.json and steps.jsonl."""
    folder = tmp_path / "analysis"
    folder.mkdir()
    (folder / "splits.json").write_text("my own splits")
    (folder / "steps.jsonl").write_text("my own steps")
    train = tmp_path / "train.csv"
    sentiment_frame(60).to_csv(train, index=False)
    config = write_config(tmp_path / "c.yaml", tiny_bert, train, folder)
    with pytest.raises(ConfigError, match="not a fintune run and holds files a run would overwrite"):
        api.train(config, show_progress=False)
    assert (folder / "splits.json").read_text() == "my own splits"
    assert (folder / "steps.jsonl").read_text() == "my own steps"


def test_swap_in_exchanges_in_one_step(tmp_path: Path) -> None:
    """Where the OS can exchange two paths, no moment exists with nothing at the path."""
    from fintune.files import _exchange, swap_in

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    if not _exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this file system cannot exchange two paths (renameat2 RENAME_EXCHANGE)")
    old, new = tmp_path / "model", tmp_path / ".model.new"
    old.mkdir()
    (old / "w").write_text("old")
    new.mkdir()
    (new / "w").write_text("new")
    swap_in(new, old)
    assert (old / "w").read_text() == "new" and not new.exists()
