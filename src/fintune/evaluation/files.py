"""Scoring a finished model on a labeled file, in the way its kind answers: class scores or
values (metrics, plots, report), generated answers (exact match, token F1), or tags (entity
precision, recall and F1). One function per predictor class; :func:`evaluate_file` picks it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fintune.console import console
from fintune.data import load_examples
from fintune.data.load import SUFFIX_FORMATS
from fintune.evaluation.generation import write_generation_evaluation
from fintune.evaluation.report import PLOTS, write_evaluation
from fintune.models.kinds.generation import GenerationPredictor
from fintune.predictors import FintuneModel, TaggerPredictor
from fintune.tagging.data import load_tagged
from fintune.tagging.metrics import write_tagging_evaluation

FileEvaluator = Callable[[Any, str, Path, int], dict[str, Any]]
# Every file an evaluation folder may hold: one of them not written this time is an old one.
OUTPUTS = ("metrics.json", "report.md", "fairness.json", "predictions.jsonl", "per_type_f1.png", *PLOTS)


def evaluate_scores_file(model: FintuneModel, data: str, out_dir: Path, batch_size: int) -> dict[str, Any]:
    """Classification and regression: the metrics of the model's scores, with its decision."""
    examples = load_examples(data, model.data_config, model.task, model.label_names)
    outputs = model.outputs(examples, batch_size)
    # Multi-label decides by a threshold per label; a binary classifier by one, or none (argmax).
    decision = model.meta.label_thresholds if model.meta.label_thresholds is not None else model.threshold
    return write_evaluation(out_dir, model.task, examples.labels, outputs, model.label_names, Path(data).name,
                            decision)


def evaluate_answers_file(model: GenerationPredictor, data: str, out_dir: Path, batch_size: int) -> dict[str, Any]:
    """Generation: answer every record and score the answers against the references."""
    examples = load_examples(data, model.data_config, model.task, model.label_names)
    metrics = write_generation_evaluation(out_dir, list(examples.labels), model.generate(examples, batch_size),
                                          examples.texts, Path(data).name, examples.instructions)
    shown = ("exact_match", "token_f1", "accuracy", "weighted_f1")
    console.print(", ".join(f"{k} {metrics[k]:.4f}" for k in shown if metrics.get(k) is not None))
    return metrics


def evaluate_tags_file(model: TaggerPredictor, data: str, out_dir: Path, batch_size: int) -> dict[str, Any]:
    """Token classification: entity-level scores of the tags of every sentence."""
    # A file that names its format reads as that format; a .txt reads as the training data did (CoNLL).
    fmt = "auto" if Path(data).suffix.lower() in SUFFIX_FORMATS else model.data_config.format
    examples, _ = load_tagged(data, model.data_config.model_copy(update={"format": fmt}))
    metrics = write_tagging_evaluation(out_dir, list(examples.labels), model.tags(examples, batch_size),
                                       examples.tokens or [], Path(data).name)
    console.print(f"entity F1 {metrics['f1']:.4f} (precision {metrics['precision']:.4f}, recall "
                  f"{metrics['recall']:.4f}) on {metrics['entities']} entities; " + ", ".join(
                      f"{k} {v['f1']:.4f}" for k, v in metrics["per_type"].items()))
    return metrics


FILE_EVALUATORS: dict[type, FileEvaluator] = {GenerationPredictor: evaluate_answers_file,
                                              TaggerPredictor: evaluate_tags_file}


def evaluate_file(model: FintuneModel, data: str, out_dir: Path, batch_size: int) -> dict[str, Any]:
    """Score ``model`` on the labeled file ``data`` into ``out_dir``, as its class answers."""
    for cls in type(model).__mro__:
        if cls in FILE_EVALUATORS:
            return FILE_EVALUATORS[cls](model, data, out_dir, batch_size)
    return evaluate_scores_file(model, data, out_dir, batch_size)
