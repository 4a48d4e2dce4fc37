"""Write an evaluation to a folder: metrics.json, plots and a Markdown report.

Layout of ``out_dir``::

    metrics.json            every metric, as returned by compute_metrics
    confusion_matrix.png    classification: counts and row shares
    roc_curve.png           binary classification with both classes present
    pr_curve.png            the same: precision against recall
    calibration.png         the same: reliability diagram
    predicted_vs_true.png   regression
    report.md               headline table, per-class table, confusion matrix, plot links
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from fintune.scoring.calibration import ECE_BINS, confidence_bins, expected_calibration_error
from fintune.scoring.intervals import bootstrap_intervals
from fintune.scoring.metrics import compute_metrics
from fintune.evaluation.fonts import with_cjk_fallback
from fintune.tasks import task_of

CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc_curve.png"
SCATTER_PNG = "predicted_vs_true.png"
CALIBRATION_PNG = "calibration.png"
PR_PNG = "pr_curve.png"
PR_LABELS_PNG = "pr_curves.png"
PLOTS = (CONFUSION_PNG, ROC_PNG, PR_PNG, CALIBRATION_PNG, SCATTER_PNG, PR_LABELS_PNG)

_HEADLINE = {
    "classification": ("accuracy", "macro_precision", "macro_recall", "macro_f1",
                       "weighted_precision", "weighted_recall", "weighted_f1",
                       "roc_auc", "pr_auc", "ks", "gini", "brier", "ece", "n"),
    "regression": ("mse", "rmse", "mae", "r2", "n"),
    "relation": ("micro_f1", "micro_precision", "micro_recall", "accuracy", "macro_f1", "weighted_f1", "ece", "n"),
    "multi_label": ("micro_f1", "micro_precision", "micro_recall", "macro_f1", "samples_f1", "subset_accuracy",
                    "hamming_loss", "ece", "n"),
}


def _pyplot() -> Any:
    """pyplot on the Agg backend, imported only when a plot is drawn.

    Lazy so that importing fintune.evaluation (the training loop does, for metrics) stays
    cheap; Agg so plotting works on headless training machines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_cjk_fallback(plt)  # class names in Chinese (news categories, relations) draw as text, not boxes
    return plt


def _save(fig: Any, path: Path) -> None:
    plt = _pyplot()
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    # Close explicitly: pyplot keeps every figure alive otherwise, and runs evaluate often.
    plt.close(fig)


def _row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total; rows of absent classes stay 0 instead of NaN."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64),
                     where=totals > 0)


def plot_confusion_matrix(path: Path, labels: list[str], matrix: np.ndarray, title: str) -> None:
    """Heatmap coloured by row share, each cell annotated with its count and share."""
    plt = _pyplot()
    k = len(labels)
    shares = _row_shares(matrix)
    side = min(4.0 + 0.8 * k, 20.0)  # grow with the classes, but keep the file bounded
    # Constrained layout places the colour bar beside the axes and the title above both,
    # so neither cuts the other (tight_layout made room for one of them only).
    fig, ax = plt.subplots(figsize=(side + 1.5, side + 0.4), layout="constrained")
    # Colour by share, not count, so a small class's errors are as visible as a large one's.
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fontsize = max(5.0, 10.0 - 0.2 * k)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(matrix[i, j])}\n{shares[i, j]:.1%}", ha="center", va="center",
                    fontsize=fontsize, color="white" if shares[i, j] > 0.5 else "black")
    long_names = max((len(name) for name in labels), default=0) > 6
    ax.set_xticks(range(k), labels, rotation=45 if long_names else 0,
                  ha="right" if long_names else "center")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    fig.suptitle(f"{title}: confusion matrix", wrap=True)
    fig.colorbar(image, ax=ax, label="share of true class")
    _save(fig, path)


def _finish_unit_square(fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str,
                        legend: str) -> None:
    """Axes of a plot over [0, 1] x [0, 1] (ROC, calibration): limits, labels, legend, save."""
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend)
    _save(fig, path)


def plot_roc_curve(path: Path, y_true: np.ndarray, scores: np.ndarray, auc: float, ks: float,
                   title: str) -> None:
    """ROC curve of the positive-class score, with the chance diagonal and the KS gap."""
    plt = _pyplot()
    fpr, tpr, _ = roc_curve(y_true == 1, scores)
    best = int(np.argmax(tpr - fpr))
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot(fpr, tpr, lw=2, label=f"ROC (AUC = {auc:.3f}, KS = {ks:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.plot([fpr[best], fpr[best]], [fpr[best], tpr[best]], ls=":", color="red",
            label=f"KS = {ks:.3f} at FPR {fpr[best]:.2f}")
    _finish_unit_square(fig, ax, path, "False positive rate", "True positive rate", f"{title}: ROC curve", "lower right")


def plot_pr_curve(path: Path, y_true: np.ndarray, scores: np.ndarray, pr_auc: float, title: str) -> None:
    """Precision against recall of the positive class, with the base rate as the chance line."""
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    precision, recall, _ = precision_recall_curve(y_true == 1, scores)
    base = float(np.mean(y_true == 1))
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot(recall, precision, lw=2, label=f"PR (AUC = {pr_auc:.3f})")
    ax.plot([0, 1], [base, base], ls="--", color="grey", label=f"chance (base rate {base:.3f})")
    _finish_unit_square(fig, ax, path, "Recall", "Precision", f"{title}: precision-recall", "upper right")


def plot_label_pr_curves(path: Path, y_true: np.ndarray, probs: np.ndarray, label_names: list[str],
                         title: str) -> None:
    """Multi-label: one precision-recall curve per label that occurs, its PR AUC in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    truth = np.asarray(y_true) >= 0.5
    for j, name in enumerate(label_names):
        if not truth[:, j].any():
            continue
        precision, recall, _ = precision_recall_curve(truth[:, j], probs[:, j])
        ax.plot(recall, precision, lw=1.3, label=f"{name} ({average_precision_score(truth[:, j], probs[:, j]):.2f})")
    _finish_unit_square(fig, ax, path, "Recall", "Precision", f"{title}: precision-recall per label (PR AUC)",
                        "lower left")


def plot_calibration(path: Path, y_true: np.ndarray, probs: np.ndarray, brier: float, title: str) -> None:
    """Reliability diagram in the bins of the ECE fintune reports (top-label confidence,
    ``ECE_BINS`` equal-width bins): accuracy against mean confidence per bin, each point
    labelled with its row count, and below it the histogram of confidences in the same bins,
    so a reader sees where the rows are and which points rest on a handful of them."""
    plt = _pyplot()
    y = np.asarray(y_true).astype(int)
    confidence, correct, which, edges = confidence_bins(y, probs)
    counts = np.bincount(which, minlength=ECE_BINS)
    used = counts > 0
    mean_conf = np.array([confidence[which == b].mean() if counts[b] else np.nan for b in range(ECE_BINS)])
    accuracy = np.array([correct[which == b].mean() if counts[b] else np.nan for b in range(ECE_BINS)])
    ece = expected_calibration_error(y, probs)
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, height_ratios=(3, 1), layout="constrained")
    ax.plot(mean_conf[used], accuracy[used], marker="o", lw=2, label=f"model (ECE = {ece:.3f}, Brier = {brier:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    for x, acc, n in zip(mean_conf[used], accuracy[used], counts[used]):
        ax.annotate(f"{n:,}", (x, acc), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("Accuracy in the bin")
    ax.set_title(f"{title}: calibration ({ECE_BINS} equal-width bins, as the ECE)", wrap=True)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4a78a8", edgecolor="white")
    hist.set_xlabel("Confidence (probability of the predicted class)")
    hist.set_ylabel("Rows")
    _save(fig, path)


def plot_predicted_vs_true(path: Path, y_true: np.ndarray, y_pred: np.ndarray, title: str) -> None:
    """Scatter of predictions against targets with the identity line (perfect predictions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.scatter(y_true, y_pred, s=10, alpha=0.5)
    low = float(min(y_true.min(), y_pred.min()))
    high = float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], ls="--", color="grey", label="y = x")
    ax.set_xlabel("True")
    ax.set_ylabel("Predicted")
    ax.set_title(f"{title}: predicted vs true")
    ax.legend(loc="upper left")
    _save(fig, path)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _cell(text: Any) -> str:
    # A "|" in a label name would split the Markdown table cell.
    return str(text).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _interval(bounds: list[float] | None) -> str:
    return f"{bounds[0]:.4f} to {bounds[1]:.4f}" if bounds else ""


def render_markdown(task: str, metrics: dict[str, Any], title: str, plots: list[str]) -> str:
    """The report: headline metrics, per-class scores, confusion matrix and plot links."""
    lines = [f"# {title}", "", f"Task: {task}. Rows evaluated: {metrics['n']}."]
    if "positive_label" in metrics:
        lines.append(f"Positive class for AUC, KS and Gini: `{metrics['positive_label']}`.")
    intervals = (metrics.get("intervals") or {}).get("metrics", {})
    headline = [[name, _fmt(metrics[name]), _interval(intervals.get(name))] for name in _HEADLINE[task]
                if name in metrics]
    lines += ["", "## Metrics", ""] + _table(["metric", "value", "95% interval (bootstrap)"], headline)
    if "per_label" in metrics:
        rows = [[name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), _fmt(s["pr_auc"]), _fmt(s["ece"]),
                 s["support"], _fmt(s["threshold"])] for name, s in metrics["per_label"].items()]
        lines += ["", "## Per label", ""]
        lines += _table(["label", "precision", "recall", "f1", "pr_auc", "ece", "support", "threshold"], rows)
    if "per_class" in metrics:
        rows = [[name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), s["support"]]
                for name, s in metrics["per_class"].items()]
        lines += ["", "## Per class", ""]
        lines += _table(["class", "precision", "recall", "f1", "support"], rows)
    if "confusion_matrix" in metrics:
        cm = metrics["confusion_matrix"]
        rows = [[name, *counts] for name, counts in zip(cm["labels"], cm["matrix"])]
        lines += ["", "## Confusion matrix", "", "Rows are true classes, columns predicted.", ""]
        lines += _table(["true \\ predicted", *cm["labels"]], rows)
    if plots:
        lines += ["", "## Plots", ""]
        # A blank line between images so each renders as its own paragraph.
        for name in plots:
            lines += [f"![{Path(name).stem.replace('_', ' ')}]({name})", ""]
        lines.pop()
    return "\n".join(lines) + "\n"


def write_evaluation(out_dir: Path, task: str, y_true: np.ndarray, outputs: np.ndarray,
                     label_names: list[str] | None, title: str,
                     threshold: float | list[float] | None = None) -> dict[str, Any]:
    """Compute the metrics and write metrics.json, the plots and report.md to ``out_dir``.

    Returns the metrics dict (the same content as metrics.json).
    """
    # Metrics first: bad input raises before anything is written.
    metrics = compute_metrics(task, y_true, outputs, label_names, threshold)
    # How far the numbers could move on another sample of the same size.
    metrics["intervals"] = bootstrap_intervals(task, y_true, outputs, threshold)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")

    plots: list[str] = []
    if task_of(task).answer == "labels":
        plot_label_pr_curves(out_dir / PR_LABELS_PNG, np.asarray(y_true), np.asarray(outputs, dtype=np.float64),
                             list(metrics["per_label"]), title)
        plots.append(PR_LABELS_PNG)
    elif task_of(task).scores_classes:
        cm = metrics["confusion_matrix"]
        plot_confusion_matrix(out_dir / CONFUSION_PNG, cm["labels"], np.asarray(cm["matrix"]),
                              title)
        plots.append(CONFUSION_PNG)
        # ROC needs both classes; with one, roc_auc is None and there is no curve to draw.
        if metrics.get("roc_auc") is not None:
            y = np.asarray(y_true).reshape(-1).astype(np.int64)
            plot_roc_curve(out_dir / ROC_PNG, y, np.asarray(outputs, dtype=np.float64)[:, 1],
                           metrics["roc_auc"], metrics["ks"], title)
            plots.append(ROC_PNG)
            plot_pr_curve(out_dir / PR_PNG, y, np.asarray(outputs, dtype=np.float64)[:, 1], metrics["pr_auc"], title)
            plots.append(PR_PNG)
            plot_calibration(out_dir / CALIBRATION_PNG, y, np.asarray(outputs, dtype=np.float64),
                             metrics["brier"], title)
            plots.append(CALIBRATION_PNG)
    else:
        plot_predicted_vs_true(out_dir / SCATTER_PNG,
                               np.asarray(y_true, dtype=np.float64).reshape(-1),
                               np.asarray(outputs, dtype=np.float64).reshape(-1), title)
        plots.append(SCATTER_PNG)
    # A re-run into the same folder must not leave a plot from an earlier run next to this report.
    for name in PLOTS:
        if name not in plots:
            (out_dir / name).unlink(missing_ok=True)

    (out_dir / "report.md").write_text(render_markdown(task, metrics, title, plots),
                                       encoding="utf-8")
    return metrics
