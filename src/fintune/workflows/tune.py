"""Hyperparameter search with Optuna over the space declared in the config's ``tune`` section.

Each trial is a normal run under ``output_dir/trials/NNN``. The study lives in
``output_dir/study.db`` (SQLite), so a search that was interrupted continues where it
stopped; the best trial's config is written to ``output_dir/best_config.yaml``, and
``fintune train`` on that file reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from rich.table import Table

from fintune import api
from fintune.config import ParamSpace, RunConfig, apply_override, dump_config, validate_config
from fintune.errors import ConfigError
from fintune.evaluation import metric_mode, primary_metric
from fintune.files import write_text

STUDY = "study.db"
BEST = "best_config.yaml"
HEARTBEAT_S = 10  # a running trial records that it is alive this often
GRACE_S = 30  # a trial silent this long was killed with its process


def _suggest(trial: optuna.Trial, key: str, space: ParamSpace) -> Any:
    if space.type == "categorical":
        return trial.suggest_categorical(key, space.choices)
    if space.type == "int":
        return trial.suggest_int(key, int(space.low), int(space.high), log=space.log)
    return trial.suggest_float(key, space.low, space.high, log=space.log)


def trial_config(base: RunConfig, params: dict[str, Any], output_dir: Path) -> RunConfig:
    """The base config with the sampled values set at their dotted paths."""
    raw = base.model_dump(mode="json", exclude={"tune"})
    for key, value in params.items():
        apply_override(raw, f"{key}={json.dumps(value)}")
    raw["output_dir"] = str(output_dir)
    return validate_config(raw, source="tune.space")


def _check_space(cfg: RunConfig) -> None:
    # Catch a misspelled key before the first trial trains for minutes.
    assert cfg.tune is not None
    sample = {k: (s.choices[0] if s.type == "categorical" else s.low) for k, s in cfg.tune.space.items()}
    trial_config(cfg, sample, Path(cfg.output_dir) / "check")


def tune(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (), *,
         trials: int | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the search until ``trials`` trials have finished; return the best."""
    cfg = api.load_run_config(config, overrides)
    if cfg.tune is None or not cfg.tune.space:
        raise ConfigError("fintune tune needs a `tune:` section with a `space` in the config "
                          "(see configs/tfns_tune.yaml)")
    _check_space(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = cfg.tune.metric or primary_metric(cfg.task)[0]
    direction = "maximize" if metric_mode(metric) == "max" else "minimize"
    # Heartbeats: a trial whose process was killed stops beating and is marked failed by the
    # next `fintune tune` on the study (after GRACE_S), instead of staying "running" forever.
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / STUDY}", heartbeat_interval=HEARTBEAT_S,
                                         grace_period=GRACE_S)
    study = optuna.create_study(
        study_name="fintune", storage=storage, load_if_exists=True,
        direction=direction,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=cfg.tune.startup_trials)
        if cfg.tune.pruning else optuna.pruners.NopPruner(),
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
    )
    target = trials or cfg.tune.trials

    def objective(trial: optuna.Trial) -> float:
        params = {key: _suggest(trial, key, space) for key, space in cfg.tune.space.items()}
        run_cfg = trial_config(cfg, params, out / "trials" / f"{trial.number:03d}")

        def report(step: int, metrics: dict[str, Any]) -> None:
            trial.report(metrics[metric], step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}: {metric} {metrics[metric]:.4f}")

        result = api.train(run_cfg, overwrite=True, show_progress=show_progress, on_evaluate=report)
        # The final model's score (best weights when early stopping is on, else the last).
        return float(result.metrics["validation"][metric])

    stale = [t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    optuna.storages.fail_stale_trials(study)
    failed = [t.number for t in study.trials if t.number in stale and t.state == optuna.trial.TrialState.FAIL]
    if failed:
        api.console.print(f"trials {', '.join(map(str, failed))} were left running by a stopped process: marked "
                          "failed, and tried again as new trials")
    # Count only finished trials (a killed one is failed above, or still beating elsewhere).
    finished = lambda: sum(t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL  # noqa: E731
                           for t in study.trials)
    remaining = target - finished()
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, catch=())
    best = study.best_trial
    best_cfg = trial_config(cfg, best.params, out / "best")
    write_text(out / BEST, dump_config(best_cfg))
    _print_trials(study, metric)
    api.console.print(f"best trial {best.number}: {metric} {best.value:.4f}; "
                      f"reproduce with: fintune train {out / BEST}")
    return {"best_trial": best.number, "best_value": best.value, "best_params": best.params,
            "metric": metric, "trials": len(study.trials), "best_config": str(out / BEST)}


def _print_trials(study: optuna.Study, metric: str) -> None:
    table = Table(title=f"trials ({metric})")
    keys = sorted({k for t in study.trials for k in t.params})
    for col in ("trial", "state", metric, *keys):
        table.add_column(col)
    for t in study.trials:
        table.add_row(str(t.number), t.state.name.lower(), "" if t.value is None else f"{t.value:.4f}",
                      *(str(t.params.get(k, "")) for k in keys))
    api.console.print(table)


__all__ = ["tune", "trial_config"]
