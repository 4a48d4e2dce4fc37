"""The ensemble recipe (``model.kind: ensemble``), as AutoGluon stacks its models without bagging:
train each member kind on the same splits (each a run of its own under ``RUN/members/KIND``,
with its own early stopping, calibration and evaluation), then weight them by greedy
ensemble selection with replacement on the validation predictions (Caruana et al. 2004).

Why greedy selection rather than stacking on out-of-fold predictions: it needs no K-fold
refits of every member (on a 2-core CPU, K times the training time), it cannot put a negative
or huge weight on a member, and it is what AutoGluon uses for its final weighted ensemble.
The validation split then serves twice (members' early stopping and the weights), so its own
scores are slightly optimistic; the test split is untouched by both and is what to compare.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fintune.config import RunConfig, as_kind, validate_config
from fintune.console import console
from fintune.data import prepare_data
from fintune.models.kinds.ensemble import MEMBERS, EnsemblePredictor
from fintune.models.metadata import EnsembleMeta, RunMeta
from fintune.predictors import FintuneModel
from fintune.recipes.base import Recipe, RecipeResult, TrainOptions, held_out, recipe_for, register_recipe
from fintune.recipes.sentence import evaluate_scores
from fintune.rundir import RunFolder
from fintune.scoring.metrics import compute_metrics
from fintune.training.distributed import is_main_process
from fintune.training.loop import TrainResult, tracked_metric
from fintune.kinds import kind_of
from fintune.tasks import task_of



def member_config(cfg: RunConfig, kind: str, run: RunFolder) -> RunConfig:
    """The ensemble's config for one member: its kind, its folder; features-only members drop the text."""
    raw = cfg.model_dump(mode="json")
    # The ensemble's settings for its members (a head's width, LightGBM's...) go to the members
    # that read them; the others keep their defaults.
    raw["model"] = as_kind(cfg.model, kind).model_dump(mode="json")
    raw["output_dir"] = str(run.path / MEMBERS / kind)
    if kind_of(kind).reads == "features":
        raw["data"]["text_column"] = None
    if raw.get("tune") is not None:
        raw["tune"] = None
    return validate_config(raw, source=f"ensemble member {kind}")


def greedy_selection(outputs: list[np.ndarray], y: np.ndarray, task: str, rounds: int,
                     metric: tuple[str, str] = ("loss", "min"), label_names: list[str] | None = None) -> list[float]:
    """Weights from ``rounds`` steps that each add (with replacement) the member whose addition
    gives the best validation ``metric`` (name, "max"/"min"): the run's tracked metric, as
    AutoGluon selects by its eval metric. A member trained with class weights ranks well but is
    miscalibrated; selecting by log loss alone would drop it. "loss" is log loss (squared error
    for regression)."""
    name, mode = metric

    def loss(pred: np.ndarray) -> float:
        if task_of(task).answer == "value" and name in ("loss", "mse"):
            return float(np.mean((pred.reshape(-1) - y) ** 2))
        if name == "loss":
            return float(-np.mean(np.log(np.clip(pred[np.arange(len(y)), y], 1e-12, None))))
        value = compute_metrics(task, y, pred, label_names).get(name)
        if value is None:
            return float("inf")
        return -float(value) if mode == "max" else float(value)

    counts = np.zeros(len(outputs))
    total = np.zeros_like(outputs[0], dtype=np.float64)
    for step in range(rounds):
        scores = [loss((total + out) / (step + 1)) for out in outputs]
        best = int(np.argmin(scores))
        counts[best] += 1
        total += outputs[best]
    return [float(c / rounds) for c in counts]


@register_recipe
class EnsembleRecipe(Recipe):
    """Members of several kinds, weighted on validation."""

    name = "ensemble"
    kinds = frozenset({"ensemble"})
    tasks = frozenset({"classification", "regression"})

    def __call__(self, cfg: RunConfig, run: RunFolder, options: TrainOptions) -> RecipeResult:
        data = prepare_data(cfg.data, cfg.task, cfg.seed)
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        members: dict[str, FintuneModel] = {}
        member_metrics: dict[str, Any] = {}
        seconds, params = 0.0, 0
        for kind in cfg.model.ensemble.members:
            console.rule(f"ensemble member: {kind}")
            sub_cfg = member_config(cfg, kind, run)
            sub = RunFolder(sub_cfg.output_dir)
            sub.check(resume=options.resume, overwrite=True)
            result = recipe_for(sub_cfg)(sub_cfg, sub, TrainOptions(resume=options.resume, overwrite=True,
                                                                    show_progress=options.show_progress))
            if result.model is None:  # another process of a multi-process member
                continue
            sub.finish(sub_cfg, result.model, result.metrics, result.training, result.report)
            members[kind] = result.model
            member_metrics[kind] = {split: {k: v for k, v in result.metrics[split].items()
                                            if isinstance(v, (int, float)) or k == "intervals"}
                                    for split in ("validation", "test") if split in result.metrics}
            seconds += result.training["train_seconds"]
            params += int(result.training.get("trainable_params") or 0)
        if not is_main_process():  # several processes: the first weights, evaluates and saves
            return RecipeResult(None, {"training": {}}, {}, data.report)
        splits = held_out(data.validation, data.test)
        y_val = np.asarray(data.validation.labels)
        val_outputs = [m.outputs(data.validation, cfg.train.eval_batch_size) for m in members.values()]
        metric = tracked_metric(cfg.train, cfg.task) if cfg.model.ensemble.selection == "metric" else ("loss", "min")
        weights = greedy_selection(val_outputs, y_val if task_of(cfg.task).answer == "value" else y_val.astype(np.int64),
                                   cfg.task, cfg.model.ensemble.rounds, metric, data.label_names)
        console.print(f"ensemble weights (greedy selection on validation {metric[0]}): "
                      + ", ".join(f"{k} {w:.2f}" for k, w in zip(members, weights)))
        meta = RunMeta.for_run(cfg, "ensemble", data.label_names,
                               ensemble=EnsembleMeta(members=list(members), weights=weights, metric=metric[0]))
        predictor = EnsemblePredictor(members, None, meta)
        metrics = evaluate_scores(predictor, splits, data.label_names, cfg, run)
        metrics["members"] = member_metrics
        metrics["ensemble_weights"] = dict(zip(members, weights))
        run.write_splits(cfg, data)
        training = TrainResult.fitted(
            "validation loss of the weighted mean", len(data.train), seconds, params, "fp32",
            best_metric=_validation_loss(cfg.task, y_val, val_outputs, weights), members=list(members)).summary()
        return RecipeResult(predictor, metrics, training, data.report)


def _validation_loss(task: str, y: np.ndarray, outputs: list[np.ndarray], weights: list[float]) -> float:
    """Log loss (squared error for regression) of the weighted mean of the members' validation
    outputs, from the outputs selection already computed (the ensemble's temperature aside)."""
    mixed = sum(w * out for w, out in zip(weights, outputs))
    if task_of(task).answer == "value":
        return float(np.mean((np.asarray(mixed).reshape(-1) - y) ** 2))
    return float(-np.mean(np.log(np.clip(mixed[np.arange(len(y)), y.astype(np.int64)], 1e-12, None))))


__all__ = ["EnsembleRecipe", "greedy_selection", "member_config"]
