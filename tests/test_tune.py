"""Hyperparameter search: space from YAML, a resumable SQLite study, a best config that trains."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from fintune.config import load_config
from fintune.errors import ConfigError
from fintune.workflows.tune import STUDY, tune

SPACE = {"trials": 2, "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True},
                                "train.batch_size": {"type": "categorical", "choices": [8, 16]}}}


def test_search_resumes_and_writes_a_reproducible_best_config(make_config, tmp_path: Path) -> None:
    config = make_config(train={"epochs": 1}, tune=SPACE)
    first = tune(config, show_progress=False)
    assert first["trials"] == 2
    again = tune(config, trials=3, show_progress=False)  # continues the stored study
    study = optuna.load_study(study_name="fintune", storage=f"sqlite:///{tmp_path / 'runs' / 'run' / STUDY}")
    assert len(study.trials) == 3 and again["trials"] == 3
    best = load_config(again["best_config"])
    assert best.train.lr == pytest.approx(again["best_params"]["train.lr"])
    assert best.train.batch_size == again["best_params"]["train.batch_size"]
    assert best.tune is None and best.output_dir.endswith("best")
    assert (tmp_path / "runs" / "run" / "trials" / "002" / "metrics.json").exists()


def test_misspelled_search_key_fails_before_training(make_config) -> None:
    config = make_config(tune={"space": {"train.learningrate": {"low": 1e-4, "high": 1e-3}}})
    with pytest.raises(ConfigError, match="train.learningrate"):
        tune(config, show_progress=False)


def test_tune_needs_a_space(make_config) -> None:
    with pytest.raises(ConfigError, match="tune:"):
        tune(make_config(), show_progress=False)


def test_a_trial_left_running_by_a_killed_tune_is_marked_failed(make_config, tmp_path: Path, monkeypatch) -> None:
    """A trial whose process died stops beating; the next tune marks it failed and trains anew."""
    import time

    import fintune.workflows.tune as tuning

    monkeypatch.setattr(tuning, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tuning, "GRACE_S", 1)
    config = make_config(train={"epochs": 1}, tune={**SPACE, "trials": 1})
    out = tmp_path / "runs" / "run"
    out.mkdir(parents=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / STUDY}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="fintune", storage=storage, direction="maximize")
    killed = study.ask()  # what a killed tune leaves: RUNNING, its heartbeat stopped
    storage.record_heartbeat(killed._trial_id)
    time.sleep(2.5)
    result = tune(config, show_progress=False)
    states = {t.number: t.state for t in optuna.load_study(study_name="fintune", storage=storage).trials}
    assert states[killed.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.COMPLETE in states.values() and result["best_trial"] != killed.number
