"""What the end-of-training summary (and the report, and ``evaluate``) warns about: a model
that answers one class, a score no better than always answering the most common class,
splits too small to trust, and a degenerate calibration fit."""

from __future__ import annotations

from typing import Any

SMALL_SPLIT = 100  # rows: below this a metric moves by several points from one split to another


def majority_baseline(split: dict[str, Any]) -> tuple[str, float] | None:
    """The most common true class of a classification split and the accuracy of always answering it."""
    confusion = split.get("confusion_matrix")
    if not confusion:
        return None
    totals = [sum(row) for row in confusion["matrix"]]
    n = sum(totals)
    if n == 0:
        return None
    best = max(range(len(totals)), key=totals.__getitem__)
    return confusion["labels"][best], totals[best] / n


def warnings_for(metrics: dict[str, Any], splits: list[str]) -> list[str]:
    """One line per problem a reader should not miss, for the held-out ``splits``."""
    out = []
    for name in splits:
        split = metrics[name]
        rows = split.get("n")
        confusion = split.get("confusion_matrix")
        if confusion:
            predicted = [sum(col) for col in zip(*confusion["matrix"])]
            used = [label for label, count in zip(confusion["labels"], predicted) if count]
            if len(used) == 1 and len(confusion["labels"]) > 1:
                out.append(f"every {name} prediction is '{used[0]}' (1 of {len(confusion['labels'])} classes): the "
                           "model has not learned to tell the classes apart; train longer, raise train.lr, or set "
                           "train.class_weights: true")
        baseline = majority_baseline(split)
        accuracy = split.get("accuracy")
        if baseline is not None and accuracy is not None and accuracy <= baseline[1]:
            out.append(f"{name} accuracy {accuracy:.3f} is no better than always answering '{baseline[0]}' "
                       f"({baseline[1]:.3f})")
        if rows is not None and rows < SMALL_SPLIT:
            out.append(f"{name} has {rows} rows: its metrics can move by several points on other data; read the "
                       "intervals")
    out += metrics.get("data_warnings") or []  # e.g. text the backbone's vocabulary does not cover
    calibration = metrics.get("calibration") or {}
    if calibration.get("at_bound"):
        out.append(f"temperature scaling {calibration.get('reason', 'reached its bound')}")
    return out
