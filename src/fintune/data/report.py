"""The data quality report: what was read, what cleaning removed, and what each split holds.

The report is a plain JSON-serializable dict so a run can save it next to the model;
:func:`print_report` renders it as tables for a person.
"""

from __future__ import annotations

import re

from dataclasses import dataclass

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fintune.data.coverage import coverage_warning
from fintune.tasks import task_of

SPLITS = ("train", "validation", "test")


def build_report(
    *,
    task: str,
    splits: Mapping[str, Any],
    label_names: list[str] | None,
    raw_rows: dict[str, int],
    duplicates_removed: int,
    conflicts: dict[str, Any],
    overlap_removed: dict[str, int],
    split_method: str,
    split_note: str | None,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> dict[str, Any]:
    """Assemble the report from the final splits (``Examples``, keyed by split name).

    ``raw_rows`` counts the rows read from each given file, keyed by the split the file was
    for; ``rows`` counts each final split after cleaning, dedup and overlap removal.
    """
    present = {name: ex for name, ex in splits.items() if ex is not None}
    report: dict[str, Any] = {
        "task": task,
        "sources": {name: ex.source for name, ex in present.items()},
        "raw_rows": {k: int(v) for k, v in raw_rows.items()},
        "rows": {name: len(ex.texts) for name, ex in present.items()},
        "label_names": list(label_names) if label_names is not None else None,
    }
    if label_names is not None:
        report["class_balance"] = {
            name: class_balance(ex.labels, label_names) for name, ex in present.items()
        }
    elif task_of(task).answer == "text":
        report["answers"] = {name: answer_stats(ex.labels) for name, ex in present.items()}
    else:
        report["target"] = {name: target_stats(ex.labels) for name, ex in present.items()}
    report["text_length"] = {
        name: text_length(ex.texts, count_tokens) for name, ex in present.items()
    }
    if isinstance(count_tokens, TokenCounter) and count_tokens.coverage is not None:
        report["coverage"] = {name: count_tokens.coverage(ex.texts) for name, ex in present.items()}
        report["coverage"]["backbone"] = count_tokens.backbone
    dated = {name: ex.dates for name, ex in present.items() if ex.dates is not None}
    if dated:
        report["dates"] = {name: date_range(d) for name, d in dated.items()}
    report["duplicates_removed"] = int(duplicates_removed)
    report["conflicts"] = conflicts
    report["overlap_removed"] = {k: int(v) for k, v in overlap_removed.items()}
    report["split"] = {"method": split_method, "note": split_note}
    return report


def class_balance(labels: np.ndarray, label_names: Sequence[str]) -> dict[str, int]:
    """Rows per label, every known label listed (0 shows a class missing from a split)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:  # multi-label rows of 0/1: rows holding each label
        counts = labels.sum(axis=0).astype(np.int64)
    else:
        counts = np.bincount(labels.astype(np.int64), minlength=len(label_names))
    return {name: int(counts[i]) for i, name in enumerate(label_names)}


def target_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, min and max of regression targets."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max())}


def answer_stats(answers: np.ndarray, top: int = 5) -> dict[str, Any]:
    """Generation: how many distinct answers, the commonest, and answer length in words."""
    counts = pd.Series(list(answers), dtype=object).value_counts()
    words = np.asarray([len(str(a).split()) for a in answers], dtype=np.float64)
    return {"distinct": int(len(counts)), "most_common": {str(k): int(v) for k, v in counts.head(top).items()},
            "mean_words": round(float(words.mean()), 2) if words.size else 0.0,
            "max_words": int(words.max()) if words.size else 0}


@dataclass
class TokenCounter:
    """Token counts of texts and the model's ``max_length``, so the report can say how many
    texts training will cut."""

    count: Callable[[list[str]], list[int]]
    max_length: int | None = None
    # How much of the text the tokenizer reads as unknown (fintune.data.coverage.measure), and
    # the backbone it belongs to, for the warning that names it.
    coverage: Callable[[list[str]], dict[str, Any]] | None = None
    backbone: str | None = None

    def __call__(self, texts: list[str]) -> list[int]:
        return self.count(texts)


# One character of a script written without spaces (Chinese, Japanese kana, Korean syllables)
# counts as a word: a Chinese post is one whitespace "word" however long it is.
_WORDS_RE = re.compile(r"[\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uAC00-\uD7AF]"
                       r"|[^\s\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uAC00-\uD7AF]+")


def word_count(text: str) -> int:
    """Words separated by whitespace, each CJK character counted as one."""
    return len(_WORDS_RE.findall(text))


def text_length(texts: list[str], count_tokens: Callable[[list[str]], list[int]] | None
                ) -> dict[str, Any]:
    """Length statistics in tokens (with ``count_tokens``) or whitespace words; with a
    :class:`TokenCounter`, also how many texts are longer than ``max_length`` (and are cut)."""
    if count_tokens is not None:
        unit, lengths = "tokens", np.asarray(count_tokens(texts), dtype=np.float64)
    else:
        unit, lengths = "words", np.asarray([word_count(t) for t in texts], dtype=np.float64)
    if lengths.size == 0:
        return {"unit": unit, "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    out: dict[str, Any] = {
        "unit": unit,
        "mean": round(float(lengths.mean()), 2),
        "p50": float(np.percentile(lengths, 50)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
    }
    if isinstance(count_tokens, TokenCounter) and count_tokens.max_length:
        out["max_length"] = count_tokens.max_length
        out["over_max_length"] = int((lengths > count_tokens.max_length).sum())
    return out


def uncovered(report: dict[str, Any], column: str | None = None) -> str | None:
    """The tokenizer-coverage warning of a data report (its training split), or None."""
    coverage = report.get("coverage") or {}
    return coverage_warning(coverage.get("train"), coverage.get("backbone"), column)


def date_range(dates: pd.Series) -> dict[str, str | None]:
    """First and last date of a split, ISO formatted, to show that splits do not overlap."""
    if len(dates) == 0:
        return {"min": None, "max": None}
    return {"min": _iso(dates.min()), "max": _iso(dates.max())}


def _iso(value: Any) -> str:
    stamp = pd.Timestamp(value)
    # Plain dates read better without a midnight time: 2024-01-31, not 2024-01-31T00:00:00.
    if stamp.tz is None and stamp == stamp.normalize():
        return stamp.date().isoformat()
    return stamp.isoformat()


# ---------------------------------------------------------------- printing


def print_report(report: dict, console: Console | None = None) -> None:
    """Print the data quality report as rich tables."""
    console = console or Console()
    splits = [s for s in SPLITS if s in report.get("rows", {})]
    console.print(_splits_table(report, splits))
    if report.get("class_balance"):
        console.print(_balance_table(report["class_balance"], splits))
    elif report.get("target"):
        console.print(_target_table(report["target"], splits))
    elif report.get("answers"):
        console.print(_answers_table(report["answers"], splits))
    console.print(_cleaning_table(report))
    warning = uncovered(report)
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    examples = (report.get("conflicts") or {}).get("examples") or []
    if examples:
        console.print("[bold]Conflicting texts[/bold] (same text, different labels), e.g.:")
        for text in examples:
            console.print(f"  - {text}", markup=False, highlight=False)
    issues = report.get("label_issues")
    if issues:
        console.print(f"[bold]Label issues[/bold]: {issues['found']:,} of {issues['checked']:,} training rows look "
                      f"mislabeled (quick model's out-of-fold accuracy {issues['quick_model_accuracy']:.3f}); "
                      f"{issues.get('dropped', 0):,} dropped")
    privacy = report.get("privacy") or {}
    if privacy.get("masked"):
        counts = ", ".join(f"{k} {v}" for k, v in privacy["counts"].items()) or "none found"
        console.print(f"[bold]Personal data masked[/bold] ({privacy['mode']}): {counts}; "
                      f"{privacy['rows_masked']} rows touched")
        for text in privacy["examples"]:
            console.print(f"  - {text}", markup=False, highlight=False)


def _splits_table(report: dict, splits: list[str]) -> Table:
    table = Table(title="Data splits")
    for header in ("split", "source", "rows", "text length", "dates"):
        table.add_column(header, justify="right" if header == "rows" else "left")
    for split in splits:
        length = report.get("text_length", {}).get(split)
        length_text = (f"mean {length['mean']:g}, p50 {length['p50']:g}, p95 {length['p95']:g}, "
                       f"max {length['max']} {length['unit']}") if length else ""
        if length and "over_max_length" in length:
            share = length["over_max_length"] / max(report["rows"][split], 1)
            length_text += f"; {length['over_max_length']:,} ({share:.1%}) over max_length {length['max_length']}, cut"
        dates = report.get("dates", {}).get(split)
        dates_text = f"{dates['min']} .. {dates['max']}" if dates and dates["min"] else ""
        # Text(), not str: a source like "train.csv [carved test]" must not be read as markup.
        table.add_row(split, Text(str(report.get("sources", {}).get(split, ""))),
                      str(report["rows"][split]), length_text, dates_text)
    return table


def _balance_table(balance: dict, splits: list[str]) -> Table:
    table = Table(title="Class balance")
    table.add_column("label")
    for split in splits:
        table.add_column(split, justify="right")
    labels = list(next(iter(balance.values()), {}))
    totals = {s: sum(balance.get(s, {}).values()) for s in splits}
    for label in labels:
        cells = []
        for split in splits:
            count = balance.get(split, {}).get(label, 0)
            share = 100 * count / totals[split] if totals[split] else 0.0
            cells.append(f"{count} ({share:.1f}%)")
        table.add_row(Text(str(label)), *cells)
    return table


def _target_table(target: dict, splits: list[str]) -> Table:
    table = Table(title="Regression target")
    table.add_column("split")
    for header in ("mean", "std", "min", "max"):
        table.add_column(header, justify="right")
    for split in splits:
        stats = target.get(split)
        if stats:
            table.add_row(split, *(f"{stats[k]:.4g}" for k in ("mean", "std", "min", "max")))
    return table


def _answers_table(answers: dict, splits: list[str]) -> Table:
    table = Table(title="Answers (generation)")
    for header in ("split", "distinct", "mean words", "max words", "most common"):
        table.add_column(header, justify="left" if header in ("split", "most common") else "right")
    for split in splits:
        stats = answers.get(split)
        if stats:
            common = ", ".join(f"{k} ({v})" for k, v in stats["most_common"].items())
            table.add_row(split, str(stats["distinct"]), f"{stats['mean_words']:g}", str(stats["max_words"]),
                          Text(common))
    return table


def _cleaning_table(report: dict) -> Table:
    table = Table(title="Cleaning", show_header=False)
    table.add_column("what")
    table.add_column("result")
    raw = report.get("raw_rows", {})
    table.add_row("rows read", ", ".join(f"{k} file: {v}" for k, v in raw.items()))
    table.add_row("exact duplicates removed", str(report.get("duplicates_removed", 0)))
    conflicts = report.get("conflicts") or {}
    if conflicts.get("count"):
        action = "dropped" if conflicts.get("dropped") else "kept (drop_conflicts is off)"
        table.add_row("conflicting labels",
                      f"{conflicts['count']} texts in {conflicts.get('rows', '?')} rows, {action}")
    else:
        table.add_row("conflicting labels", "none")
    overlap = report.get("overlap_removed", {})
    table.add_row("overlap removed",
                  f"validation: {overlap.get('validation', 0)}, test: {overlap.get('test', 0)}")
    split = report.get("split", {})
    method = split.get("method", "")
    table.add_row("split", Text(method + (f" ({split['note']})" if split.get("note") else "")))
    return table
