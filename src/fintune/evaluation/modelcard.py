"""The model card written next to the weights (README.md in the model folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from fintune.config import RunConfig
from fintune.catalogue import CATALOGUE
from fintune.models.predictor import Predictor
from fintune.scoring.intervals import format_interval
from fintune.tasks import task_of

HEADLINE = ("f1", "precision", "recall", "exact_match", "token_f1", "micro_f1", "samples_f1", "subset_accuracy",
            "hamming_loss", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "ks", "gini", "brier", "ece", "mse", "mae", "r2",
            "directional_accuracy")


def _metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    splits = [s for s in ("validation", "test") if metrics.get(s)]
    names = [m for m in HEADLINE if any(metrics[s].get(m) is not None for s in splits)]
    lines = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for name in names:
        cells = [format_interval(metrics[s].get(name), ((metrics[s].get("intervals") or {}).get("metrics") or {})
                                 .get(name)) for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any(metrics[s].get("intervals") for s in splits):
        lines.append("\nIn brackets: 95% bootstrap interval over the split's rows.")
    return "\n".join(lines)


def _privacy_line(privacy: dict[str, Any]) -> str:
    if not privacy.get("masked"):
        return "not masked (`data.privacy.mask` off, or the input is not free text)."
    counts = ", ".join(f"{k} {v}" for k, v in privacy.get("counts", {}).items()) or "none found"
    return (f"masked before training and at prediction time ({privacy.get('mode')} mode; types "
            f"{', '.join(privacy.get('types', []))}). Values replaced: {counts}; "
            f"{privacy.get('rows_masked', 0)} rows touched.")


def _dp_line(privacy: dict[str, Any] | None) -> str:
    if not privacy:
        return "trained without differential privacy."
    return (f"trained with differential privacy (DP-SGD): epsilon spent {privacy['epsilon_spent']:.2f} of "
            f"{privacy['target_epsilon']:g}, delta {privacy['delta']:g}, per-example clipping "
            f"{privacy['max_grad_norm']:g}, noise multiplier {privacy['noise_multiplier']:g}, {privacy['steps']} steps.")


def _inputs(cfg: RunConfig, model: Predictor) -> str:
    """What the model reads, as the model itself reads it (a tree model reads the feature
    columns, a text encoder reads them serialized to text)."""
    columns = ", ".join(f"`{c}`" for c in cfg.data.feature_columns or [])
    if cfg.data.text_column:
        text = f"text column `{cfg.data.text_column}`"
        return text + (f" and feature columns {columns}" if columns and model.reads_features else "")
    if cfg.data.tokens_column:
        return f"words in column `{cfg.data.tokens_column}`"
    if cfg.data.messages_column:
        return f"conversations in column `{cfg.data.messages_column}`"
    if not model.reads_text:
        return f"feature columns {columns} (numbers standardized or binned, categories one-hot)"
    return "table rows serialized to text from columns " + columns


def render_model_card(cfg: RunConfig, report: dict[str, Any], metrics: dict[str, Any],
                      training: dict[str, Any], model: Predictor) -> str:
    """Markdown: what the model is (as its class describes itself), data, metrics, training,
    intended use and limits."""
    task = cfg.task
    inputs = _inputs(cfg, model)
    if cfg.data.pair_column:
        inputs += f", read as a pair with `{cfg.data.pair_column}`"
    types = sorted({t.split("-", 1)[1] for t in metrics.get("label_names") or [] if "-" in t})
    labels = {"classification": ", ".join(f"`{n}`" for n in metrics.get("label_names") or []),
              "regression": f"a number (`{cfg.data.label_column}`)",
              "relation": "the relation between the two marked entities: " + ", ".join(
                  f"`{n}`" for n in metrics.get("label_names") or []),
              "multi_label": "any number of the labels " + ", ".join(f"`{n}`" for n in metrics.get("label_names")
                                                                     or []) + " (one threshold per label)",
              "generation": f"a generated answer, trained on `{cfg.data.label_column}`",
              "token_classification": f"a {str(metrics.get('scheme', '')).upper()} tag per word (entity types "
                                      f"{', '.join(types)}){' decoded by a CRF' if getattr(cfg.model, 'crf', False) else ''}"}[task]
    if cfg.data.instruction_column:
        inputs += f" under the instruction in `{cfg.data.instruction_column}`"
    rows = report.get("rows", {})
    body = f"""# Model card: {Path(cfg.output_dir).name}

Trained with fintune {_version()} for {task}: {model.card_summary()}{_base_line(cfg, model)}.

## Data
- Training file: `{cfg.data.train}`; validation: `{cfg.data.validation or 'carved from training data'}`;
  test: `{cfg.data.test or ('carved from training data' if cfg.data.split.test_size else 'none')}`.
- Input: {inputs}. Output: {labels}.
- Rows after cleaning: {", ".join(f"{k} {v}" for k, v in rows.items())}.
  Duplicates removed: {report.get("duplicates_removed", 0)}; conflicting labels dropped:
  {report.get("conflicts", {}).get("count", 0)}; train/eval overlap removed: {report.get("overlap_removed", {})}.
- Split: {cfg.data.split.method}, seed {cfg.seed}.
- Personal data: {_privacy_line(report.get("privacy") or {})}

## Metrics
{_metrics_table(metrics)}

## Training
- Trainable parameters: {training["trainable_params"]:,} of {training["total_params"]:,}.
- Privacy: {_dp_line(training.get("privacy"))}
- Steps: {training["global_step"]}; best `{training["metric"]}` {training["best_metric"]} at step
  {training["best_step"]}; precision {training["precision"]}; {training["train_seconds"]:.0f} s of training.
- Hyperparameters: learning rate {cfg.train.lr}, batch size {cfg.train.batch_size}, epochs
  {cfg.train.epochs}, weight decay {cfg.train.weight_decay}, max length {cfg.model.max_length}.
  The full resolved config is `config.yaml` in the run directory.

## Intended use
Decision support for financial {task} on inputs like the training data (same source,
language, period and label definitions). {_outputs_line(task)}; a person should review
decisions with material consequences.

## Limits
- Quality is measured only on the splits above; other sources, periods or writing styles
  can score lower (distribution shift). Re-evaluate with `fintune evaluate` before use on new data.
- {_calibration(metrics, task)}
- Inputs are truncated to {cfg.model.max_length} tokens.
- The model inherits the biases of its backbone and of its training labels; this card
  runs no fairness review: `fintune report RUN --groups COLUMNS` does (with robustness and
  explanations).
"""
    return str(ModelCard(f"---\n{card_data(cfg, metrics, model).to_yaml()}\n---\n{body}"))


def card_data(cfg: RunConfig, metrics: dict[str, Any], model: Predictor) -> ModelCardData:
    """The Hub metadata of the card: base model, license, datasets and the measured results
    (``model-index``), so the Hub and ``huggingface_hub`` read them."""
    backbone = CATALOGUE.get(cfg.model.backbone) if model.uses_backbone() else None
    base = backbone.title.split(" ")[0] if backbone else (
        cfg.model.backbone if model.uses_backbone() and _is_hub_id(cfg.model.backbone) else None)
    dataset = _dataset_name(cfg.data.train, cfg.data.format)
    # Rows of feature columns are a table, whatever reads them.
    spec = task_of(cfg.task)
    task_type = spec.pipeline_tag if cfg.data.text_column or cfg.data.tokens_column or cfg.data.messages_column \
        else spec.tabular_pipeline_tag or spec.pipeline_tag
    results = [
        EvalResult(task_type=task_type, dataset_type=dataset, dataset_name=dataset, dataset_split=split,
                   metric_type=name, metric_value=float(metrics[split][name]))
        for split in ("validation", "test") if isinstance(metrics.get(split), dict)
        for name in CARD_METRICS if isinstance(metrics[split].get(name), (int, float))
    ]
    return ModelCardData(
        model_name=Path(cfg.output_dir).name, base_model=base, license=backbone.license.lower() if backbone else None,
        library_name=model.card_library, pipeline_tag=task_type, tags=["fintune", "finance", cfg.task],
        datasets=[dataset], eval_results=results or None)


CARD_METRICS = ("micro_f1", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "f1", "mse", "r2")


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/")) and not Path(name).exists()


def _dataset_name(train: str, fmt: str) -> str:
    """The Hub id of the training data, or the name of the folder (or file) it came from."""
    if fmt == "hub":
        return train.split("#")[0]
    path = Path(train)
    return path.parent.name if path.parent.name not in ("", ".", "data", "frames") else path.stem


def _base_line(cfg: RunConfig, model: Predictor) -> str:
    backbone = CATALOGUE.get(cfg.model.backbone) if model.uses_backbone() else None
    return f"; backbone `{cfg.model.backbone}` is {backbone.title} ({backbone.license})" if backbone else ""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fintune")
    except PackageNotFoundError:
        return "(source tree)"


def _outputs_line(task: str) -> str:
    return task_of(task).card_outputs


def _calibration(metrics: dict[str, Any], task: str) -> str:
    fixed = task_of(task).card_calibration
    if fixed is not None:
        return fixed
    cal = metrics.get("calibration")
    if not cal:
        return "Probabilities are the model's softmax, not calibrated on held-out data."
    before, after = cal["ece_before"].get("validation"), cal["ece_after"].get("validation")
    if "per_label" in cal:
        return (f"Each label's probability has its own temperature, fitted on validation data and kept for "
                f"{cal['labels_scaled']} of {len(cal['per_label'])} labels; mean per-label validation ECE "
                f"{before:.3f} -> {after:.3f}. Calibration on other data is not measured.")
    if not cal.get("applied", True):
        return (f"Probabilities are the model's own: a temperature was fitted on validation data (T = "
                f"{cal.get('fitted', cal['temperature']):.3f}) and {cal.get('reason', 'not applied')}.")
    return (f"Probabilities are temperature-scaled (T = {cal['temperature']:.3f}, fitted on validation "
            f"data; validation ECE {before:.3f} -> {after:.3f}); calibration on other data is not measured.")
