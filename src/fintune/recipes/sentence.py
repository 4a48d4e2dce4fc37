"""The sentence-level recipe: one label (or value, or answer) per text or row.

It trains text, fusion, mlp and causal models (classification and regression; causal LMs
also generation) with the one training loop, then calibrates, picks the decision threshold
on validation and evaluates every held-out split. :mod:`fintune.recipes.gbm` reuses all of
it but the training step.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rich.progress import Progress

from fintune.config import RunConfig
from fintune.console import console
from fintune.data import Examples, PreparedData, prepare_data
from fintune.data.columns import categorical_columns
from fintune.data.features import FeatureEncoder, check_leakage
from fintune.errors import ConfigError
from fintune.evaluation import write_evaluation
from fintune.evaluation.generation import write_generation_evaluation
from fintune.models import generation
from fintune.models.backbones import checkpoint_activations, load_tokenizer
from fintune.models.causal import AnswerLoss
from fintune.models.inference import Inputs, resolve_precision
from fintune.models.metadata import RunMeta, TargetScale, predictor_name
from fintune.predictors import FintuneModel, predictor_class
from fintune.recipes.base import Recipe, RecipeResult, TrainOptions, announce, held_out, register_recipe
from fintune.rundir import RunFolder
from fintune.scoring.calibration import (apply_label_temperatures, apply_temperature, choose_label_temperatures,
                                         choose_temperature, expected_calibration_error, label_ece)
from fintune.scoring.threshold import choose_threshold
from fintune.strategies import build_strategy
from fintune.data import coverage
from fintune.data.report import TokenCounter, uncovered
from fintune.scoring.multilabel import chosen_thresholds
from fintune.tasks import task_of
from fintune.training import loop
from fintune.training.preference import build_objective
from fintune.training.distributed import is_main_process

def token_counter(tokenizer: Any, max_length: int | None = None, backbone: str | None = None) -> TokenCounter:
    """Token counts of texts, for the data report's length statistics (and, with
    ``max_length``, how many texts training will cut), and how much of them the tokenizer
    reads as unknown (the report's ``coverage``)."""
    def count(texts: list[str]) -> list[int]:
        # verbose=False: counting a long document is not feeding it to the model, so no length warning.
        return [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    return TokenCounter(count, max_length, lambda texts: coverage.measure(tokenizer, texts), backbone)


@register_recipe
class SentenceRecipe(Recipe):
    """Text, long-text, fusion, mlp and causal models through the training loop."""

    name = "sentence"
    kinds = frozenset({"text", "long_text", "fusion", "mlp", "causal"})
    tasks = frozenset({"classification", "regression", "generation", "multi_label", "relation"})

    def __call__(self, cfg: RunConfig, run: RunFolder, options: TrainOptions) -> RecipeResult:
        kind = predictor_class(predictor_name(cfg.task, cfg.model.kind, getattr(cfg.model, "head", None)))
        tokenizer = load_tokenizer(cfg.model) if kind.reads_text else None
        # A long-text model reads past max_length (in windows): no text is "cut" at it.
        cut_at = cfg.model.max_length if kind.new_windows(cfg.model) is None else None
        data = prepare_data(cfg.data, cfg.task, cfg.seed,
                            token_counter(tokenizer, cut_at, cfg.model.backbone) if tokenizer else None)
        uncovered_text = uncovered(data.report, cfg.data.text_column)
        if uncovered_text:
            console.print(f"[bold yellow]warning:[/] {uncovered_text}", soft_wrap=True, highlight=False)
        loop.check_metric(cfg.train, data.validation, cfg.task, data.label_names)
        if cfg.decision.threshold != "argmax" and len(data.label_names or []) != 2:
            raise ConfigError(f"decision.threshold '{cfg.decision.threshold}' needs a binary classification "
                              "task (two labels); use 'argmax' otherwise")
        features = fit_features(cfg, data, kind.binned_features) if kind.reads_features else None
        prompt = kind.new_prompt(cfg.model, tokenizer, data.label_names, cfg.data.instruction_column is not None)
        windows = kind.new_windows(cfg.model)
        inputs = kind.new_inputs(tokenizer, cfg.model.max_length, features, prompt, windows)
        scale = TargetScale.fit(data.train.labels) if task_of(cfg.task).answer == "value" else None
        fitted = scaled(data, scale)  # what training sees; evaluation below reads the real targets
        train_examples, objective = (options.objective_for(fitted.train) if options.objective_for
                                     else (fitted.train, None))
        model, result = self.fit(cfg, run, options, fitted, inputs, train_examples, objective, kind)
        training = result.summary()
        if model is None:
            return RecipeResult(None, {"training": training}, training, data.report)
        meta = RunMeta.for_run(cfg, kind.name, data.label_names, target_scale=scale,
                               distilled=options.distilled, long_text=windows, **kind.prompt_meta(cfg.model, prompt))
        device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
        predictor = FintuneModel(model, tokenizer, meta, resolve_precision(cfg.train.eval_precision, device),
                                 features=features)
        splits = held_out(data.validation, data.test)
        if task_of(cfg.task).answer == "text":
            answers = Inputs.of_prompt(tokenizer, cfg.model.max_length, prompt.with_answers())
            metrics = _evaluate_generation(predictor, splits, answers, cfg.train.eval_batch_size, run)
        else:
            metrics = evaluate_scores(predictor, splits, data.label_names, cfg, run)
        run.write_splits(cfg, data)
        if uncovered_text:  # the summary and the report list it with the other warnings
            metrics["data_warnings"] = [uncovered_text]
        return RecipeResult(predictor, metrics, training, data.report)

    def fit(self, cfg: RunConfig, run: RunFolder, options: TrainOptions, data: PreparedData, inputs: Inputs,
            train_examples: Examples, objective: loop.Objective | None,
            kind: type[FintuneModel]) -> tuple[Any, loop.TrainResult]:
        """Build the model, start the run folder, train; (None, result) on processes after the first."""
        strategy = build_strategy(cfg.strategy)
        model = kind.build(cfg.model, cfg.task, data.label_names, inputs.features.width if inputs.features else 0,
                           inputs.prompt, strategy.load_kwargs())
        if cfg.train.gradient_checkpointing:
            checkpoint_activations(model)
        model = strategy.prepare(model)
        evaluator = None
        batcher = None
        train_inputs = inputs
        if task_of(cfg.task).answer == "text":
            # Generation trains and validates on prompt + answer; it predicts from the prompt alone.
            train_inputs = Inputs.of_prompt(inputs.tokenizer, cfg.model.max_length, inputs.prompt.with_answers())
            objective = generation.AnswerLoss(train_inputs(train_examples))
            evaluator = _answer_loss_evaluator(train_inputs.pad_id, cfg.train.eval_batch_size)
        if strategy.objective is not None:  # preference tuning: pairs of answers, its own batches
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            objective, batcher = build_objective(strategy.objective, strategy.config, model, train_inputs,
                                                 train_examples, resolve_precision(cfg.train.precision, device))
        elif objective is None and inputs.prompt is not None:
            objective = AnswerLoss(train_examples.labels)
        run.start(cfg, data.report, resume=options.resume, overwrite=options.overwrite)
        result = loop.train(
            model, strategy, train_inputs, train_examples, data.validation, task=cfg.task,
            label_names=data.label_names, cfg=cfg.train, seed=cfg.seed, work_dir=run.path, resume=options.resume,
            show_progress=options.show_progress, objective=objective, on_evaluate=options.on_evaluate,
            evaluator=evaluator, batcher=batcher,
        )
        return (strategy.finalize(model) if is_main_process() else None), announce(result)


def scaled(data: PreparedData, scale: TargetScale | None) -> PreparedData:
    """The splits with standardized regression targets (the same splits without a scale)."""
    if scale is None:
        return data

    def standardize(examples: Examples | None) -> Examples | None:
        if examples is None:
            return None
        return replace(examples, labels=scale.forward(examples.labels).astype(np.float32))
    return replace(data, train=standardize(data.train), validation=standardize(data.validation),
                   test=standardize(data.test))


def fit_features(cfg: RunConfig, data: PreparedData, binned: bool = True) -> FeatureEncoder:
    """The feature encoder fitted on the training split, after the leak check; ``binned``
    adds the quantile bins of ``model.numeric_bins`` to each numeric feature."""
    train = data.train
    assert train.features is not None and train.labels is not None
    bins = cfg.model.numeric_bins if binned else 0
    enc = FeatureEncoder.fit(train.features, list(train.features.columns), categorical_columns(cfg.data),
                             train.source, numeric_bins=bins)
    if cfg.data.leak_check:
        check_leakage(train.features, enc, train.labels, cfg.task, train.source)
    console.print(f"features: {len(enc.numeric)} numeric, {len(enc.categorical)} categorical "
                  f"-> {enc.width} inputs (fitted on {len(train)} training rows)")
    return enc


def _answer_loss_evaluator(pad_id: int, batch_size: int) -> loop.Evaluator:
    def evaluate(model: Any, encoded: dict[str, Any], dtype: Any) -> dict[str, Any]:
        return {"loss": generation.answer_loss(model, encoded, batch_size, pad_id, dtype)}
    return evaluate


def evaluate_scores(model: FintuneModel, splits: dict[str, Examples], label_names: list[str] | None,
                    cfg: RunConfig, run: RunFolder) -> dict[str, Any]:
    """Classification and regression: calibrate, pick the threshold, score and report each split."""
    # Each evaluation split goes through the model once (fp32, as `fintune predict` by default);
    # the threshold reuses validation's outputs.
    outputs = {name: model.outputs(ex, cfg.train.eval_batch_size) for name, ex in splits.items()}
    calibration, method = None, task_of(cfg.task).calibration
    if method is not None and cfg.decision.temperature_scaling:
        outputs, calibration = CALIBRATIONS[method](outputs, splits, model)
    model.threshold = _decision_threshold(outputs["validation"], splits["validation"].labels, cfg)
    decision: Any = model.threshold
    if task_of(cfg.task).answer == "labels":  # thresholds per label, tuned on validation
        decision = model.meta.label_thresholds = chosen_thresholds(cfg.decision.label_thresholds,
                                                                   splits["validation"].labels, outputs["validation"])
    metrics: dict[str, Any] = {"label_names": label_names}
    for name, examples in splits.items():
        metrics[name] = write_evaluation(run.eval_dir(name), cfg.task, examples.labels, outputs[name],
                                         label_names, f"{name} ({Path(examples.source).name})", decision)
    if calibration is not None:
        metrics["calibration"] = calibration
    return metrics


def _evaluate_generation(model: FintuneModel, splits: dict[str, Examples], answer_inputs: Inputs,
                         batch_size: int, run: RunFolder) -> dict[str, Any]:
    """Generation: answer every held-out record, score the answers, and the loss on the references."""
    metrics: dict[str, Any] = {"label_names": None}
    for name, examples in splits.items():
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task(f"generate ({name})", total=len(examples))
            answers = model.generate(examples, batch_size, on_batch=lambda n: progress.advance(bar, n))
        loss = generation.answer_loss(model.model, answer_inputs(examples), batch_size, answer_inputs.pad_id)
        metrics[name] = write_generation_evaluation(
            run.eval_dir(name), list(examples.labels), answers, examples.texts,
            f"{name} ({Path(examples.source).name})", examples.instructions, extra={"loss": loss})
    return metrics


def _calibrate(outputs: dict[str, Any], splits: dict[str, Examples],
               model: FintuneModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Temperature scaling fitted on validation outputs, kept only where it helps out of fold
    (see :func:`choose_temperature`); the model applies the kept one from now on."""
    choice = choose_temperature(splits["validation"].labels, outputs["validation"])
    fitted = {name: apply_temperature(out, choice.fitted) for name, out in outputs.items()}
    report = {**choice.to_dict(),
              "ece_before": {n: expected_calibration_error(splits[n].labels, o) for n, o in outputs.items()},
              "ece_after": {n: expected_calibration_error(splits[n].labels, o) for n, o in fitted.items()}}
    line = f"temperature scaling (fitted on validation): T = {choice.fitted:.3f}, {choice.reason}"
    if choice.at_bound:
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    else:
        console.print(line, soft_wrap=True)
    if not choice.applied:
        model.temperature = None
        return outputs, report
    model.temperature = choice.temperature
    return fitted, report


def _calibrate_labels(outputs: dict[str, Any], splits: dict[str, Examples],
                      model: FintuneModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Multi-label: a temperature per label, each kept only where it helps that label out of
    fold; thresholds are then tuned on the calibrated probabilities."""
    names = model.label_names or []
    choices = choose_label_temperatures(splits["validation"].labels, outputs["validation"])
    temperatures = [c.temperature for c in choices]
    fitted = {name: apply_label_temperatures(out, temperatures) for name, out in outputs.items()}
    kept = sum(c.applied for c in choices)
    report = {"per_label": {label: c.to_dict() for label, c in zip(names, choices)}, "labels_scaled": kept,
              "ece_before": {n: label_ece(splits[n].labels, o) for n, o in outputs.items()},
              "ece_after": {n: label_ece(splits[n].labels, o) for n, o in fitted.items()}}
    console.print(f"temperature scaling per label (fitted on validation): kept for {kept} of {len(choices)} labels; "
                  f"mean validation ECE {report['ece_before']['validation']:.4f} -> "
                  f"{report['ece_after']['validation']:.4f}", soft_wrap=True)
    model.meta.label_temperatures = temperatures if kept else None
    return (fitted if kept else outputs), report


# How each task's probabilities are calibrated (Task.calibration).
CALIBRATIONS = {"softmax": _calibrate, "per_label": _calibrate_labels}


def _decision_threshold(val_outputs: Any, val_labels: Any, cfg: RunConfig) -> float | None:
    """The threshold on P(positive) from validation outputs, or None for argmax."""
    rule = cfg.decision
    if rule.threshold == "argmax":
        return None
    threshold = choose_threshold(val_labels, val_outputs[:, 1], rule.threshold,
                                 target_recall=rule.target_recall,
                                 cost_false_negative=rule.cost_false_negative,
                                 cost_false_positive=rule.cost_false_positive)
    console.print(f"decision threshold ({rule.threshold}, on validation data): {threshold:.4f}")
    return threshold
