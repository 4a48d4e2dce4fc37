"""What a model-risk review asks of a finished run: fairness, robustness, explanations.

Each function takes a run directory and scores the run's own test split (recorded in
``splits.json``), or a labeled file passed as ``data``. The HTML report in
:mod:`fintune.report` puts them together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.data import Examples, load_examples
from fintune.data.columns import load_table
from fintune.errors import FintuneError
from fintune.files import write_text
from fintune.evaluation.explain import Explanation, explain
from fintune.evaluation.fairness import TRUSTED_POSITIVES, TRUSTED_ROWS, GroupSpec, fairness_table, fit_group_thresholds, small_groups
from fintune.evaluation.robustness import robustness_suite
from fintune.models.metadata import RunMeta
from fintune.predictors import FintuneModel, model_folder
from fintune.rundir import METRICS, load_split, read_metrics, split_names
from fintune.tasks import task_of


def held_out_split(run: str | Path) -> str:
    """The run's test split when it has one, else its validation split."""
    return "test" if "test" in split_names(run) else "validation"


def examples_and_table(run: str | Path, data: str | Path | None,
                       model: FintuneModel) -> tuple[Examples, pd.DataFrame]:
    """The run's held-out split (default) or a labeled file, with its raw table rows aligned."""
    if data is None:
        return load_split(run, held_out_split(run), model)
    examples = load_examples(str(data), model.data_config, model.task, model.label_names)
    table = load_table(str(data), model.data_config)
    return examples, table.loc[examples.rows]


def _binary(model: FintuneModel) -> None:
    if not task_of(model.task).scores_classes or len(model.label_names or []) != 2:
        raise FintuneError("fairness metrics need a binary classification model (approve/reject, flag/pass)")


def _group_column(table: pd.DataFrame, spec: GroupSpec) -> pd.Series:
    if spec.column not in table.columns:
        raise FintuneError(f"group column '{spec.column}' is not in the data; it has: {', '.join(map(str, table.columns))}")
    return table[spec.column].reset_index(drop=True)


def fairness(run: str | Path, groups: list[str], *, data: str | Path | None = None,
             mitigate: str | None = None, mitigate_on: str | None = None,
             model: FintuneModel | None = None) -> dict[str, Any]:
    """Per-group rates and gaps for each group column; with ``mitigate``, per-group thresholds.

    Mitigation fits thresholds on the run's validation split for ``mitigate_on`` (default:
    the first group column), saves them in the model, and reports the evaluation data
    before and after, so the cost in accuracy is shown next to the gaps it closes.
    """
    model = model or FintuneModel.load(run)
    _binary(model)
    specs = [GroupSpec.parse(g) for g in groups]
    examples, table = examples_and_table(run, data, model)
    probs = model.outputs(examples)
    before_pred = model.labels_ids(probs)
    result: dict[str, Any] = {"before": {}}
    resolved = []
    for spec in specs:
        values = _group_column(table, spec)
        spec = spec.resolve(values)
        resolved.append(spec)
        result["before"][spec.column] = fairness_table(examples.labels, before_pred, spec.labels(values))
        small = small_groups(values, examples.labels, spec)
        if small:
            result.setdefault("warnings", []).append(
                f"'{spec.column}': {', '.join(f'{g} ({n} rows)' for g, n in small.items())} have under {TRUSTED_ROWS} "
                f"rows or {TRUSTED_POSITIVES} positives here: their rates are noise, and a mitigation fitted on groups "
                "this small will not hold on new data")
    if mitigate:
        target = next((s for s in resolved if s.column == (mitigate_on or resolved[0].column)), None)
        if target is None:
            raise FintuneError(f"--mitigate-on '{mitigate_on}' must be one of the --groups columns")
        val_examples, val_table = load_split(run, "validation", model)
        default = model.threshold if model.threshold is not None else 0.5
        val_groups = _group_column(val_table, target)
        thresholds = fit_group_thresholds(val_examples.labels, model.outputs(val_examples)[:, 1],
                                          val_groups, target, mitigate, default)
        small = small_groups(val_groups, val_examples.labels, target)
        if small:
            result.setdefault("warnings", []).extend([
                f"mitigation on '{target.column}': group '{g}' has {n} validation rows (or under "
                f"{TRUSTED_POSITIVES} positives); its thresholds are fitted on noise and may not hold on new data"
                for g, n in small.items()])
        _save_group_thresholds(run, thresholds.to_dict())
        after_pred = thresholds.decide(probs[:, 1], _group_column(table, target))
        result["mitigation"] = thresholds.to_dict()
        result["after"] = {s.column: fairness_table(examples.labels, after_pred, s.labels(_group_column(table, s)))
                           for s in resolved}
    return result


def _save_group_thresholds(run: str | Path, thresholds: dict[str, Any]) -> None:
    """Record fitted per-group thresholds in the saved model's metadata."""
    folder = model_folder(run)
    RunMeta.read(folder).updated(group_thresholds=thresholds).write(folder)


def robustness(run: str | Path, *, data: str | Path | None = None, seed: int = 0,
               model: FintuneModel | None = None) -> dict[str, Any]:
    """The perturbation suite on the run's test split (or ``data``)."""
    model = model or FintuneModel.load(run)
    if not task_of(model.task).scores_classes:
        raise FintuneError("the robustness suite scores classification models")
    examples, _ = examples_and_table(run, data, model)
    return robustness_suite(model, examples, seed=seed)


def explain_text(run: str | Path, text: str) -> Explanation:
    """Token attributions for one text (text models)."""
    model = FintuneModel.load(run)
    if model.explanation_method == "occlusion":  # a model without explanations: explain() says why
        raise FintuneError(f"a {model.kind} model reads table rows; use explain_rows (fintune explain RUN --row N)")
    return explain(model, Examples([text], None, None, "text"))


def explain_rows(run: str | Path, rows: list[int], *, data: str | Path | None = None) -> list[Explanation]:
    """Explanations of rows (positions) of the run's test split or of ``data``."""
    model = FintuneModel.load(run)
    examples, table = examples_and_table(run, data, model)
    if any(r < 0 or r >= len(examples) for r in rows):
        raise FintuneError(f"rows must be between 0 and {len(examples) - 1}")
    return [explain(model, examples, r, table) for r in rows]


def permutation_importance(model: FintuneModel, examples: Examples, table: pd.DataFrame,
                           seed: int = 0) -> list[tuple[str, float]]:
    """Global importance of each raw feature column: the drop in accuracy when it is shuffled
    (the text of a fusion model is rebuilt from the shuffled rows too)."""
    assert examples.labels is not None and model.features is not None
    base = np.mean(model.labels_ids(model.outputs(examples)) == examples.labels)
    rng = np.random.default_rng(seed)
    scores = []
    for col in model.features.columns:
        shuffled = table.copy()
        shuffled[col] = shuffled[col].to_numpy()[rng.permutation(len(shuffled))]
        pred = model.labels_ids(model.outputs(model.examples_of(shuffled, "shuffled")))
        scores.append((col, float(base - np.mean(pred == examples.labels))))
    return sorted(scores, key=lambda s: -s[1])


def privacy_audit(run: str | Path, *, model: FintuneModel | None = None, max_rows: int = 2000) -> dict[str, Any]:
    """Membership inference (loss threshold) on the run's training rows against its held-out
    split; written to RUN/privacy_audit.json."""
    from fintune.evaluation.privacy_audit import membership_inference

    model = model or FintuneModel.load(run)
    members = load_split(run, "train", model)[0]
    held = held_out_split(run)
    result = {**membership_inference(model, members, load_split(run, held, model)[0], max_rows=max_rows),
              "non_members": held}
    training = (read_metrics(run).get("training") or {}) if (Path(run) / METRICS).exists() else {}
    result["dp"] = training.get("privacy")
    write_text(Path(run) / "privacy_audit.json", json.dumps(result, indent=2))
    return result


def parse_groups(text: str) -> list[str]:
    """``sex,age:25,35,50`` -> ``["sex", "age:25,35,50"]``: bare numbers extend the bins before them."""
    groups: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if groups and ":" in groups[-1] and _is_number(token):
            groups[-1] += "," + token
        else:
            groups.append(token)
    return groups


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def print_fairness(tables: dict[str, Any], console: Any, title: str = "fairness") -> None:
    """One rich table per group column."""
    from rich.table import Table

    for column, table in tables.items():
        out = Table(title=f"{title}: {column} (DP diff {_f(table['demographic_parity_difference'])}, "
                          f"EO diff {_f(table['equalized_odds_difference'])})")
        for name in ("group", "rows", "selection rate", "accuracy", "TPR", "FPR"):
            out.add_column(name, justify="left" if name == "group" else "right")
        for group, r in table["groups"].items():
            out.add_row(group, str(r["count"]), *(_f(r[k]) for k in ("selection_rate", "accuracy", "tpr", "fpr")))
        console.print(out)


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
