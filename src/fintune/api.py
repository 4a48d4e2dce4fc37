"""The Python API. The CLI in :mod:`fintune.cli` calls exactly these functions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from transformers import set_seed

from fintune.config import RunConfig, apply_override, dump_config, load_config, validate_config
from fintune.data import Examples, PreparedData, load_examples, prepare_data, print_report
from fintune.data.features import FeatureEncoder, check_leakage
from fintune.data.prepare import categorical_columns, load_table
from fintune.errors import ConfigError, FintuneError
from fintune.evaluation import choose_threshold, write_evaluation
from fintune.evaluation.calibration import apply_temperature, expected_calibration_error, fit_temperature
from fintune.modelcard import render_model_card
from fintune.evaluation.generation import write_generation_evaluation
from fintune.models import generation
from fintune.models.backbones import (
    build_model, checkpoint_activations, generation_format, load_tokenizer, prompt_format, resolve_backbone,
)
from fintune.models.causal import AnswerLoss
from fintune.models.fintune_model import FintuneModel
from fintune.models.gbm import GBMModel
from fintune.models.inference import Inputs
from fintune.strategies import build_strategy
from fintune.training import loop
from fintune.training.distributed import is_main_process

console = Console(stderr=True)


@dataclass
class RunResult:
    """Where a run lives and what it measured."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"


def load_run_config(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A validated config from a YAML path or a config object, with ``a.b=value`` overrides."""
    if isinstance(config, RunConfig):
        if overrides:
            raw = config.model_dump(mode="json")
            for item in overrides:
                apply_override(raw, item)
            return validate_config(raw)
        return config
    return load_config(config, overrides)


def _token_counter(tokenizer: Any):
    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return count


def data_check(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (),
               output: str | Path | None = None) -> dict[str, Any]:
    """Load, clean and split the data as training would; print and write the quality report."""
    cfg = load_run_config(config, overrides)
    if cfg.task == "token_classification":
        from fintune.tagging.data import prepare_tagged, print_tagging_report

        report = prepare_tagged(cfg.data, cfg.seed).report
        print_tagging_report(report, console)
    else:
        report = prepare_data(cfg.data, cfg.task, cfg.seed, _token_counter(load_tokenizer(cfg.model))).report
        print_report(report, console)
    out = Path(output) if output else Path(cfg.output_dir) / "data_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(f"data report written to [bold]{out}[/]")
    return report


RUN_MARKERS = ("config.yaml", "metrics.json", loop.CHECKPOINT, "model")


def _check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    # A data_check.json alone is not a run: `fintune data check` then `train` is the usual path.
    holds_run = any((run_dir / name).exists() for name in RUN_MARKERS)
    if holds_run and not resume and not overwrite:
        raise ConfigError(
            f"run directory {run_dir} already holds a run; pass --resume to continue it, "
            "--overwrite to replace it, or set output_dir to a new folder"
        )


def train(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (), *,
          resume: bool = False, overwrite: bool = False, show_progress: bool = True,
          on_evaluate: Callable[[int, dict[str, Any]], None] | None = None,
          objective_for: Callable[[Examples], tuple[Examples, loop.Objective]] | None = None,
          extra_meta: dict[str, Any] | None = None) -> RunResult:
    """Fine-tune, evaluate and save a servable model in ``output_dir``.

    Data and backbone are validated before anything is written, so a bad input leaves
    no half-made run directory behind. ``objective_for`` lets distillation swap the
    training examples and loss; ``on_evaluate`` sees each validation result.
    """
    cfg = load_run_config(config, overrides)
    run_dir = Path(cfg.output_dir)
    main = is_main_process()  # several processes: only the first checks and writes the run directory
    if main:
        _check_run_dir(run_dir, resume, overwrite)
    if resume and not (run_dir / loop.CHECKPOINT).exists() and (run_dir / "metrics.json").exists():
        console.print(f"{run_dir} finished already; nothing to resume")
        return RunResult(run_dir, read_metrics(run_dir))
    set_seed(cfg.seed)
    if cfg.task == "token_classification":
        from fintune.tagging.recipe import train_tagger

        fmodel, metrics, training, report = train_tagger(
            cfg, run_dir, resume=resume, show_progress=show_progress, on_evaluate=on_evaluate,
            start_run=lambda report: _start_run(run_dir, cfg, report, resume=resume, overwrite=overwrite))
        if fmodel is None:
            return RunResult(run_dir, metrics)
        return _finish_run(run_dir, cfg, fmodel, metrics, training, report)
    uses_text = cfg.model.kind in ("text", "fusion", "causal")
    generating = cfg.task == "generation"
    tokenizer = load_tokenizer(cfg.model) if uses_text else None
    data = prepare_data(cfg.data, cfg.task, cfg.seed, _token_counter(tokenizer) if tokenizer else None)
    loop.check_metric(cfg.train, data.validation, cfg.task, data.label_names)
    if cfg.decision.threshold != "argmax" and len(data.label_names or []) != 2:
        raise ConfigError(f"decision.threshold '{cfg.decision.threshold}' needs a binary classification "
                          "task (two labels); use 'argmax' otherwise")
    features = fit_features(cfg, data) if cfg.model.kind not in ("text", "causal") else None
    prompt = _prompt(cfg, tokenizer, data.label_names)
    inputs = Inputs(tokenizer, cfg.model.max_length, features, prompt)
    # Generation trains and validates on prompt + answer; it predicts from the prompt alone.
    train_inputs = Inputs(tokenizer, cfg.model.max_length, None, prompt.with_answers()) if generating else inputs
    strategy = build_strategy(cfg.strategy)
    model: Any = None
    if cfg.model.kind != "gbm":
        model = build_model(cfg.model, cfg.task, data.label_names, features.width if features else 0, prompt,
                            strategy.load_kwargs())
        if cfg.train.gradient_checkpointing:
            checkpoint_activations(model)
        model = strategy.prepare(model)
    train_examples, objective = (objective_for(data.train) if objective_for else (data.train, None))
    evaluator = None
    if generating:
        objective = generation.AnswerLoss(train_inputs(train_examples))
        evaluator = _answer_loss_evaluator(train_inputs.pad_id, cfg.train.eval_batch_size)
    elif objective is None and prompt is not None:
        objective = AnswerLoss(train_examples.labels)

    if main:
        _start_run(run_dir, cfg, data.report, resume=resume, overwrite=overwrite)

    if model is None:
        model, training = _fit_gbm(cfg, inputs, train_examples, data.validation, len(data.label_names or [None]))
    else:
        result = loop.train(
            model, strategy, train_inputs, train_examples, data.validation, task=cfg.task,
            label_names=data.label_names, cfg=cfg.train, seed=cfg.seed, work_dir=run_dir, resume=resume,
            show_progress=show_progress, objective=objective, on_evaluate=on_evaluate, evaluator=evaluator,
        )
        if not main:
            return RunResult(run_dir, {"training": asdict(result)})
        if result.processes > 1:
            console.print(f"{result.processes} processes; weights identical on every rank: {result.ranks_in_sync}")
        console.print(f"trainable parameters: {result.trainable_params:,} of {result.total_params:,} "
                      f"({100 * result.trainable_params / result.total_params:.2f}%)")
        training = {k: v for k, v in asdict(result).items() if k != "history"}
        model = strategy.finalize(model)
    fmodel = FintuneModel(model, tokenizer, {
        "task": cfg.task, "kind": cfg.model.kind, "label_names": data.label_names,
        "max_length": cfg.model.max_length, "data": cfg.data.model_dump(mode="json"),
        "backbone": cfg.model.backbone, "base_model": resolve_backbone(cfg.model.backbone),
        "strategy": cfg.strategy.name, **(extra_meta or {}), **_prompt_meta(cfg, prompt),
    }, features=features)
    splits = {name: ex for name, ex in (("validation", data.validation), ("test", data.test))
              if ex is not None and ex.texts}
    if generating:
        metrics = _evaluate_generation(fmodel, splits, train_inputs, cfg.train.eval_batch_size, run_dir)
    else:
        metrics = _evaluate_scores(fmodel, splits, data.label_names, cfg, run_dir)
    _write_splits(run_dir, cfg, data)
    return _finish_run(run_dir, cfg, fmodel, metrics, training, data.report)


def _start_run(run_dir: Path, cfg: RunConfig, report: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Make the run directory (replaced with ``overwrite``) and write the config and data report."""
    if not is_main_process():
        return
    if overwrite and not resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    (run_dir / "data_check.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


def _finish_run(run_dir: Path, cfg: RunConfig, fmodel: FintuneModel, metrics: dict[str, Any],
                training: dict[str, Any], report: dict[str, Any]) -> RunResult:
    """Save the servable model, its card and the metrics; drop the checkpoints."""
    metrics["training"] = training
    fmodel.save(run_dir / "model")
    (run_dir / "model" / "README.md").write_text(render_model_card(cfg, report, metrics, training), encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    for name in (loop.CHECKPOINT, loop.BEST):
        (run_dir / name).unlink(missing_ok=True)
    _print_summary(metrics, run_dir)
    return RunResult(run_dir, metrics)


def _prompt(cfg: RunConfig, tokenizer: Any, label_names: list[str] | None) -> Any:
    """A causal LM's prompt: label words to score (classification) or a template to answer."""
    if cfg.model.kind != "causal":
        return None
    if cfg.task == "generation":
        return generation_format(cfg.model, tokenizer, cfg.data.instruction_column is not None)
    return prompt_format(cfg.model, tokenizer, label_names or [])


def _prompt_meta(cfg: RunConfig, prompt: Any) -> dict[str, Any]:
    if prompt is None:
        return {}
    if cfg.task == "generation":
        return {"prompt": {"template": prompt.template}, "max_new_tokens": cfg.model.max_new_tokens}
    return {"prompt": {"template": prompt.template, "label_words": prompt.label_words}}


def _answer_loss_evaluator(pad_id: int, batch_size: int) -> loop.Evaluator:
    def evaluate(model: Any, encoded: dict[str, Any], dtype: Any) -> dict[str, Any]:
        return {"loss": generation.answer_loss(model, encoded, batch_size, pad_id, dtype)}
    return evaluate


def _evaluate_scores(fmodel: FintuneModel, splits: dict[str, Examples], label_names: list[str] | None,
                     cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Classification and regression: calibrate, pick the threshold, score and report each split."""
    # Each evaluation split goes through the model once (fp32, as `fintune predict` by default);
    # the threshold reuses validation's outputs.
    outputs = {name: fmodel.outputs(ex, cfg.train.eval_batch_size) for name, ex in splits.items()}
    calibration = None
    if cfg.task == "classification" and cfg.decision.temperature_scaling:
        outputs, calibration = _calibrate(outputs, splits, fmodel)
    threshold = _decision_threshold(outputs["validation"], splits["validation"].labels, cfg)
    fmodel.threshold = fmodel.meta["threshold"] = threshold
    metrics = _final_evaluation(splits, outputs, label_names, cfg, run_dir, threshold)
    if calibration is not None:
        metrics["calibration"] = calibration
    return metrics


def _evaluate_generation(fmodel: FintuneModel, splits: dict[str, Examples], answer_inputs: Inputs,
                         batch_size: int, run_dir: Path) -> dict[str, Any]:
    """Generation: answer every held-out record, score the answers, and the loss on the references."""
    metrics: dict[str, Any] = {"label_names": None}
    for name, examples in splits.items():
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task(f"generate ({name})", total=len(examples))
            answers = fmodel.generate(examples, batch_size, on_batch=lambda n: progress.advance(bar, n))
        loss = generation.answer_loss(fmodel.model, answer_inputs(examples), batch_size, answer_inputs.pad_id)
        metrics[name] = write_generation_evaluation(
            run_dir / "eval" / name, list(examples.labels), answers, examples.texts,
            f"{name} ({Path(examples.source).name})", examples.instructions, extra={"loss": loss})
    return metrics


def _calibrate(outputs: dict[str, Any], splits: dict[str, Examples],
               fmodel: FintuneModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Temperature scaling fitted on validation outputs; the model applies it from now on."""
    temperature = fit_temperature(splits["validation"].labels, outputs["validation"])
    scaled = {name: apply_temperature(out, temperature) for name, out in outputs.items()}
    fmodel.temperature = fmodel.meta["temperature"] = temperature
    report = {"temperature": temperature,
              "ece_before": {n: expected_calibration_error(splits[n].labels, o) for n, o in outputs.items()},
              "ece_after": {n: expected_calibration_error(splits[n].labels, o) for n, o in scaled.items()}}
    console.print(f"temperature scaling (fitted on validation): T = {temperature:.3f}, validation ECE "
                  f"{report['ece_before']['validation']:.4f} -> {report['ece_after']['validation']:.4f}")
    return scaled, report


SPLITS = "splits.json"


def _write_splits(run_dir: Path, cfg: RunConfig, data: PreparedData) -> None:
    """Which file rows went to which split: the audit trail, and what reports reload."""
    files = {"train": cfg.data.train, "validation": cfg.data.validation or cfg.data.train,
             "test": cfg.data.test or cfg.data.train}
    record = {name: {"file": files[name], "rows": [int(r) for r in ex.rows]}
              for name, ex in (("train", data.train), ("validation", data.validation), ("test", data.test))
              if ex is not None and ex.rows is not None}
    (run_dir / SPLITS).write_text(json.dumps(record), encoding="utf-8")


def load_split(run: str | Path, split: str = "test",
               model: FintuneModel | None = None) -> tuple[Examples, Any]:
    """A finished run's own split, as examples and as the raw table rows (for group columns).

    Pass the run's ``model`` when it is loaded already, so it is not loaded again.
    """
    run = Path(run)
    path = run / SPLITS
    if not path.exists():
        raise FintuneError(f"{run} has no {SPLITS} (trained before fintune recorded its splits); "
                           "pass --data with a labeled file instead")
    record = json.loads(path.read_text(encoding="utf-8"))
    if split not in record:
        raise FintuneError(f"{run} has no '{split}' split; it has: {', '.join(record)}")
    model = model or FintuneModel.load(run)
    file, rows = record[split]["file"], record[split]["rows"]
    examples = load_examples(file, model.data_config, model.task, model.label_names)
    position = {int(r): i for i, r in enumerate(examples.rows)}
    index = np.array([position[r] for r in rows])
    table = load_table(file, model.data_config).loc[rows]
    return examples.take(index), table


def fit_features(cfg: RunConfig, data: PreparedData) -> FeatureEncoder:
    """The feature encoder fitted on the training split, after the leak check."""
    train = data.train
    assert train.features is not None and train.labels is not None
    # Trees split raw values themselves; bins would only add columns to search.
    bins = cfg.model.numeric_bins if cfg.model.kind != "gbm" else 0
    enc = FeatureEncoder.fit(train.features, list(train.features.columns), categorical_columns(cfg.data),
                             train.source, numeric_bins=bins)
    if cfg.data.leak_check:
        check_leakage(train.features, enc, train.labels, cfg.task, train.source)
    console.print(f"features: {len(enc.numeric)} numeric, {len(enc.categorical)} categorical "
                  f"-> {enc.width} inputs (fitted on {len(train)} training rows)")
    return enc


def _fit_gbm(cfg: RunConfig, inputs: Inputs, train: Examples, validation: Examples,
             num_labels: int) -> tuple[GBMModel, dict[str, Any]]:
    console.print("training LightGBM on the features")
    gbm = GBMModel.fit(cfg.model.gbm, cfg.task, num_labels, inputs(train)["features"], train.labels,
                       inputs(validation)["features"], validation.labels, cfg.seed, cfg.train.num_threads)
    trees = gbm.booster.best_iteration or gbm.booster.current_iteration()
    training = {
        "metric": "validation loss", "train_rows": len(train), "best_metric": None, "best_step": trees,
        "global_step": gbm.booster.current_iteration(), "stopped_early": trees < cfg.model.gbm.n_estimators,
        "train_seconds": round(gbm.train_seconds, 3), "eval_seconds": 0.0,
        "train_samples_per_s": round(len(train) * gbm.booster.current_iteration() / max(gbm.train_seconds, 1e-9), 3),
        "trainable_params": trees, "total_params": trees, "precision": "fp64", "resumed_from_step": None,
    }
    return gbm, training


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


def _final_evaluation(splits: dict[str, Examples], outputs: dict[str, Any], label_names: list[str] | None,
                      cfg: RunConfig, run_dir: Path, threshold: float | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {"label_names": label_names}
    for name, examples in splits.items():
        metrics[name] = write_evaluation(run_dir / "eval" / name, cfg.task, examples.labels, outputs[name],
                                         label_names, f"{name} ({Path(examples.source).name})", threshold)
    return metrics


def _print_summary(metrics: dict[str, Any], run_dir: Path) -> None:
    table = Table(title="results")
    table.add_column("metric")
    splits = [s for s in ("validation", "test") if s in metrics]
    for split in splits:
        table.add_column(split, justify="right")
    for name in ("f1", "precision", "recall", "exact_match", "token_f1", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "ks", "gini", "brier", "ece",
                 "mse", "mae", "r2", "directional_accuracy"):
        values = [metrics[s].get(name) for s in splits]
        if any(v is not None for v in values):
            table.add_row(name, *(f"{v:.4f}" if v is not None else "" for v in values))
    console.print(table)
    console.print(f"servable model: [bold]{run_dir / 'model'}[/]  (report: {run_dir / 'eval'})")


def evaluate(run: str | Path, data: str | Path, *, output: str | Path | None = None,
             batch_size: int = 64, groups: list[str] | None = None) -> dict[str, Any]:
    """Score a finished run on a labeled file; writes metrics, plots and a Markdown report.

    With ``groups`` (column names, ``age:25,35,50`` for bins) the metrics also hold a
    ``fairness`` table per group column, written to ``fairness.json`` as well.
    """
    model = FintuneModel.load(run)
    out_dir = Path(output) if output else Path(run) / "eval" / Path(str(data)).stem
    if model.task == "token_classification":
        return _evaluate_tagger(model, str(data), out_dir, batch_size, groups)
    examples = load_examples(str(data), model.data_config, model.task, model.label_names)
    if model.task == "generation":
        if groups:
            raise FintuneError("--groups (fairness) needs class probabilities; a generation run has none")
        metrics = write_generation_evaluation(out_dir, list(examples.labels), model.generate(examples, batch_size),
                                              examples.texts, Path(str(data)).name, examples.instructions)
        shown = ("exact_match", "token_f1", "accuracy", "weighted_f1")
        console.print(", ".join(f"{k} {metrics[k]:.4f}" for k in shown if metrics.get(k) is not None))
        console.print(f"evaluation written to [bold]{out_dir}[/]")
        return metrics
    outputs = model.outputs(examples, batch_size)
    metrics = write_evaluation(out_dir, model.task, examples.labels, outputs, model.label_names,
                               f"{Path(str(data)).name}", model.threshold)
    own = Path(run) / "metrics.json"
    if own.exists():
        # Distribution shift: the same metrics on the run's own held-out data, and the gap.
        held = json.loads(own.read_text(encoding="utf-8"))
        held = held.get("test") or held.get("validation") or {}
        metrics["shift_vs_run"] = {k: metrics[k] - held[k] for k in SHIFT_METRICS
                                   if isinstance(metrics.get(k), float) and isinstance(held.get(k), float)}
        for name, gap in metrics["shift_vs_run"].items():
            console.print(f"{name}: {metrics[name]:.4f} ({gap:+.4f} against the run's own held-out split)")
    if groups:
        from fintune.trust import fairness, print_fairness

        metrics["fairness"] = fairness(run, groups, data=data)["before"]
        (out_dir / "fairness.json").write_text(json.dumps(metrics["fairness"], indent=2), encoding="utf-8")
        print_fairness(metrics["fairness"], console)
    console.print(f"evaluation written to [bold]{out_dir}[/]")
    return metrics


def _evaluate_tagger(model: FintuneModel, data: str, out_dir: Path, batch_size: int,
                     groups: list[str] | None) -> dict[str, Any]:
    from fintune.tagging.data import load_tagged
    from fintune.tagging.metrics import write_tagging_evaluation

    if groups:
        raise FintuneError("--groups (fairness) compares sentence-level decisions; a token_classification run "
                           "has none")
    from fintune.data.load import SUFFIX_FORMATS

    # A file that names its format reads as that format; a .txt reads as the training data did (CoNLL).
    fmt = "auto" if Path(data).suffix.lower() in SUFFIX_FORMATS else model.data_config.format
    examples, _ = load_tagged(data, model.data_config.model_copy(update={"format": fmt}))
    metrics = write_tagging_evaluation(out_dir, list(examples.labels), model.tags(examples, batch_size),
                                       examples.tokens or [], Path(data).name)
    console.print(f"entity F1 {metrics['f1']:.4f} (precision {metrics['precision']:.4f}, recall "
                  f"{metrics['recall']:.4f}) on {metrics['entities']} entities; " + ", ".join(
                      f"{k} {v['f1']:.4f}" for k, v in metrics["per_type"].items()))
    console.print(f"evaluation written to [bold]{out_dir}[/]")
    return metrics


SHIFT_METRICS = ("accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "mse", "mae")

WRITERS = {
    ".csv": lambda df, path, first: df.to_csv(path, mode="w" if first else "a", header=first, index=False),
    ".jsonl": lambda df, path, first: df.to_json(path, orient="records", lines=True, mode="w" if first else "a"),
}


def predict(run: str | Path, input: str | Path, output: str | Path, *, batch_size: int = 64,
            chunk_rows: int = 2048, show_progress: bool = True) -> Path:
    """Append the predicted label and class probabilities (a generation run: the generated
    answer) to every row of a CSV/JSONL file."""
    output = Path(output)
    writer = WRITERS.get(output.suffix.lower())
    if writer is None:
        raise FintuneError(f"output {output}: use a .csv or .jsonl file name")
    model = FintuneModel.load(run)
    # data.windows turns a price table into one row per complete window.
    frame = load_table(str(input), model.data_config.model_copy(update={"format": "auto"}))
    if model.task == "token_classification":
        return _predict_entities(model, frame, str(input), output, writer, batch_size, chunk_rows, show_progress)
    # Validate every row before writing anything, so a bad row leaves no partial output.
    examples = model.examples_of(frame, str(input))
    if model.features is not None:
        model.inputs(examples)
    output.parent.mkdir(parents=True, exist_ok=True)
    with Progress(console=console, disable=not show_progress) as progress:
        bar = progress.add_task("predict", total=len(examples))
        for start in range(0, len(examples), chunk_rows):
            chunk = frame.iloc[start:start + chunk_rows].copy()
            # Generation runs answer in text; the others give probabilities or values.
            score = model.generate if model.task == "generation" else model.outputs
            out = score(examples.subset(start, start + chunk_rows), batch_size,
                        on_batch=lambda n: progress.advance(bar, n))
            for name, values in model.prediction_columns(out, chunk).items():
                chunk[name] = values
            writer(chunk, output, start == 0)
    console.print(f"{len(examples)} predictions written to [bold]{output}[/]")
    return output


def _predict_entities(model: FintuneModel, frame: Any, source: str, output: Path, writer: Any, batch_size: int,
                      chunk_rows: int, show_progress: bool) -> Path:
    """Append each row's entities (type, text, character offsets, score): from its words when the
    input has the tokens column, else from its raw text (``data.text_column``, default ``text``)."""
    from fintune.data.prepare import check_columns
    from fintune.tagging.data import tagged_examples

    cfg = model.data_config
    by_words = cfg.tokens_column in frame.columns
    column = cfg.tokens_column if by_words else (cfg.text_column or "text")
    check_columns(frame, [(column, "tokens" if by_words else "text")], source)
    if by_words:  # validate every row before writing anything
        words = tagged_examples(frame, cfg, source, require_tags=False)[0].tokens or []
    output.parent.mkdir(parents=True, exist_ok=True)
    as_json = output.suffix.lower() == ".csv"  # a CSV cell holds the list as JSON text
    with Progress(console=console, disable=not show_progress) as progress:
        bar = progress.add_task("tag", total=len(frame))
        for start in range(0, len(frame), chunk_rows):
            chunk = frame.iloc[start:start + chunk_rows].copy()
            advance = lambda n: progress.advance(bar, n)  # noqa: E731
            found = (model.entities_of_tokens(words[start:start + chunk_rows], batch_size, advance) if by_words
                     else model.entities([str(t) for t in chunk[column].tolist()], batch_size, advance))
            rows = [[e.as_dict() for e in row] for row in found]
            chunk["entities"] = [json.dumps(r) for r in rows] if as_json else rows
            writer(chunk, output, start == 0)
    console.print(f"entities of {len(frame)} rows written to [bold]{output}[/]")
    return output


def export(run: str | Path, *, format: str = "hf", quantize: str | None = None, merge: bool = True,
           output: str | Path | None = None, force: bool = False, data: str | Path | None = None,
           config: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Write the run's model for production.

    ``hf``: a plain Hugging Face folder (default RUN/merged), LoRA merged in. ``onnx``: an
    ONNX graph (default RUN/onnx, or RUN/onnx-int8 with ``quantize="int8"``), checked
    against the torch model on held-out rows (``data``, else the run's test or validation
    split); refused when the primary metric drops more than ``deploy.export.max_metric_drop``
    points, unless ``force``.
    """
    from fintune.deploy import deploy_config
    from fintune.deploy.export import export_hf, export_onnx

    run = Path(run)
    if format not in ("hf", "onnx"):
        raise FintuneError(f"unknown export format '{format}'; use hf or onnx")
    if quantize not in (None, "int8"):
        raise FintuneError(f"unknown quantization '{quantize}'; use int8")
    if format == "hf":
        if quantize:
            raise FintuneError("--quantize applies to --format onnx")
        out = Path(output) if output else run / "merged"
        export_hf(run, out, merge=merge)
        return out
    if not merge:
        raise FintuneError("ONNX export merges adapters into the weights; drop --no-merge")
    out = Path(output) if output else run / ("onnx-int8" if quantize else "onnx")
    export_onnx(run, out, deploy_config(run, config, overrides).export, quantize=quantize, force=force, data=data)
    return out


def read_metrics(run: str | Path) -> dict[str, Any]:
    """The final metrics of a finished run."""
    path = Path(run) / "metrics.json"
    if not path.exists():
        raise FintuneError(f"{run} has no metrics.json: is it a finished run?")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["RunResult", "data_check", "evaluate", "export", "load_run_config", "predict", "read_metrics",
           "train"]
