"""``fintune report RUN``: one self-contained HTML file for a model-risk review.

Everything is inside the file: plots are PNGs embedded as data URIs, styles are inline,
there is no script and no link to fetch, so it opens offline and can be attached to a
validation report as it is. Sections: model facts, data, test metrics with confusion
matrix, ROC, PR and calibration plots, calibration (ECE before/after temperature scaling),
fairness by group, robustness, explanations of example predictions, the model card.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune import trust
from fintune.console import console, duration
from fintune.errors import FintuneError
from fintune.files import write_text
from fintune.evaluation.explain import explain
from fintune.evaluation.report import CALIBRATION_PNG, CONFUSION_PNG, PR_PNG, ROC_PNG, SCATTER_PNG
from fintune.predictors import FintuneModel
from fintune.evaluation.checks import warnings_for
from fintune.rundir import LEADERBOARD, load_split, read_metrics
from fintune.tasks import task_of

REPORT = "report.html"
EXAMPLES = 3

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2733;line-height:1.45}
h1{border-bottom:3px solid #1f4e79;padding-bottom:.3em}h2{color:#1f4e79;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #c8d0da;padding:.3em .6em;text-align:right}
th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
.plots img{width:48%;margin:.5%;border:1px solid #dde3ea}.muted{color:#5b6b7d}.warning{color:#8a4b00;font-weight:600}
.example{border:1px solid #dde3ea;border-radius:6px;padding:.6em;margin:.6em 0}
pre{background:#f6f8fa;padding:.8em;white-space:pre-wrap;border-radius:6px}
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    """Numbers people read: thousands separators, 3 significant digits (4 decimals at most)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Shown):
        return html.escape(value.text)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return html.escape(number(value))
    return html.escape(str(value))


def number(value: float) -> str:
    """``0.83275`` -> ``0.833``; ``22713986.0`` -> ``22,713,986``; ``0.0`` -> ``0``."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.2e}"


class Shown(str):
    """A cell already formatted (a share as a percentage, seconds as m:ss)."""

    @property
    def text(self) -> str:
        return str(self)


def percent(share: float | None) -> Shown | None:
    return None if share is None else Shown(f"{100 * share:.1f}%")


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _facts(model: FintuneModel, metrics: dict[str, Any]) -> str:
    meta = model.meta
    training = metrics.get("training", {})
    rows = [
        ["task", model.task], ["model kind", model.kind], ["backbone", meta.backbone],
        ["strategy", meta.strategy], ["labels", ", ".join(model.label_names or []) or "–"],
        ["decision threshold", meta.threshold if meta.threshold is not None else "argmax"],
        ["temperature", meta.temperature],
        ["per-group thresholds", (meta.group_thresholds or {}).get("column", "none")],
        ["trainable / total parameters", Shown(f"{_fmt(training.get('trainable_params'))} / "
                                               f"{_fmt(training.get('total_params'))}")],
        ["training time (m:ss)", Shown(duration(training["train_seconds"])) if training.get("train_seconds") is not None
         else None],
    ]
    return _table(["fact", "value"], rows)


def _data_section(run: Path) -> str:
    path = run / "data_check.json"
    if not path.exists():
        return "<p class=muted>no data report</p>"
    report = json.loads(path.read_text(encoding="utf-8"))
    rows = [[split, n, ", ".join(f"{k}: {v}" for k, v in (report.get("class_balance", {}).get(split) or {}).items())]
            for split, n in report.get("rows", {}).items()]
    notes = [f"duplicates removed: {report.get('duplicates_removed', 0)}",
             f"conflicting labels: {(report.get('conflicts') or {}).get('count', 0)}",
             f"split: {(report.get('split') or {}).get('method', '–')}"]
    return _table(["split", "rows", "classes"], rows) + f"<p class=muted>{html.escape('; '.join(notes))}</p>"


def _metrics_section(run: Path, metrics: dict[str, Any]) -> str:
    test = metrics.get("test") or metrics.get("validation") or {}
    names = ["micro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "accuracy", "macro_f1", "weighted_f1", "roc_auc", "pr_auc", "ks", "gini", "brier", "ece",
             "mse", "mae", "r2", "directional_accuracy", "n"]
    bounds = (test.get("intervals") or {}).get("metrics", {})
    rows = [[n, test[n], f"{bounds[n][0]:.4f} to {bounds[n][1]:.4f}" if n in bounds else ""]
            for n in names if test.get(n) is not None]
    split = "test" if metrics.get("test") else "validation"
    plots = [p for p in (CONFUSION_PNG, ROC_PNG, PR_PNG, CALIBRATION_PNG, SCATTER_PNG)
             if (run / "eval" / split / p).exists()]
    images = "".join(_image(run / "eval" / split / p, p.removesuffix(".png").replace("_", " ")) for p in plots)
    cm = test.get("confusion_matrix")
    matrix = ""
    if cm:
        matrix = "<h3>Confusion matrix (rows: true, columns: predicted)</h3>" + _table(
            ["", *cm["labels"]], [[label, *row] for label, row in zip(cm["labels"], cm["matrix"])])
    return (f"<p class=muted>{split} split; intervals: 95% percentile bootstrap over rows</p>"
            + _table(["metric", "value", "95% interval"], rows) + matrix
            + f'<div class="plots">{images}</div>' + _other_evaluations(run))


OTHER_METRICS = ("n", "accuracy", "weighted_f1", "macro_f1", "roc_auc", "pr_auc", "mse", "r2")


def _other_evaluations(run: Path) -> str:
    """The evaluations a user ran on files of their own (``fintune evaluate RUN --data F``
    writes ``eval/<name>/``), beside the run's own splits."""
    folder = run / "eval"
    found = sorted(d for d in folder.iterdir() if d.is_dir() and d.name not in ("validation", "test")
                   and (d / "metrics.json").exists()) if folder.is_dir() else []
    if not found:
        return ""
    scores = {d.name: json.loads((d / "metrics.json").read_text(encoding="utf-8")) for d in found}
    names = [n for n in OTHER_METRICS if any(m.get(n) is not None for m in scores.values())]
    rows = [[name, *(m.get(n) if m.get(n) is not None else "" for n in names)] for name, m in scores.items()]
    return ("<h3>Evaluations on other files</h3><p class=muted>from <code>fintune evaluate RUN --data FILE</code>"
            " (eval/&lt;name&gt;/)</p>" + _table(["evaluation", *names], rows))


def _generation_metrics_section(metrics: dict[str, Any]) -> str:
    """Exact match, token F1 and (closed answer sets) class scores per held-out split."""
    from fintune.evaluation.generation import GENERATION_METRICS

    splits = [s for s in ("validation", "test") if metrics.get(s)]
    rows = [[name, *(metrics[s].get(name) for s in splits)] for name in GENERATION_METRICS
            if any(metrics[s].get(name) is not None for s in splits)]
    note = ("<p class=muted>answers are scored as classes when the references are a small closed set; "
            "unmatched: the share naming no class; refusals: answers that open by declining</p>")
    return note + _table(["metric", *splits], rows)


WORST = 10


def _answers_section(run: Path, metrics: dict[str, Any]) -> str:
    """How long the answers are, and the worst of them (lowest token F1) beside their references."""
    from fintune.evaluation.generation import token_f1

    split = "test" if metrics.get("test") else "validation"
    path = run / "eval" / split / "predictions.jsonl"
    if not path.exists():
        return "<p class=muted>no predictions were written for this run</p>"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lengths = [len(str(r["answer"]).split()) for r in records]
    plot = _length_histogram(lengths, run / "eval" / split / "answer_lengths.png")
    worst = sorted(records, key=lambda r: token_f1(r["reference"], r["answer"]))[:WORST]
    rows = [[r["input"][:200], r["reference"][:200], r["answer"][:200], token_f1(r["reference"], r["answer"])]
            for r in worst]
    return (f"<p class=muted>{split} split, {len(records):,} answers</p>" + f'<div class="plots">{plot}</div>'
            + f"<h3>The {len(rows)} worst answers (lowest token F1)</h3>"
            + _table(["input", "reference", "answer", "token F1"], rows))


def _length_histogram(lengths: list[int], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    ax.hist(lengths, bins=min(30, max(1, len(set(lengths)))), color="#1f4e79")
    ax.set(xlabel="answer length (words)", ylabel="answers", title="Answer lengths")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return _image(out, "answer lengths")


def _calibration_section(metrics: dict[str, Any]) -> str:
    cal = metrics.get("calibration")
    if not cal:
        return "<p class=muted>temperature scaling was not fitted for this run</p>"
    if "per_label" in cal:
        return _label_calibration_section(cal)
    fitted = cal.get("fitted", cal["temperature"])
    rows = [[split, cal["ece_before"].get(split), cal["ece_after"].get(split)] for split in cal["ece_before"]]
    choice = f"<p>{html.escape(cal['reason'])}.</p>" if cal.get("reason") else ""
    evidence = ""
    if cal.get("ece_after_out_of_fold") is not None:
        evidence = _table(["validation, out of fold", "without T", "with T"], [
            ["ECE", cal["ece_before"].get("validation"), cal["ece_after_out_of_fold"]],
            ["negative log-likelihood", cal.get("nll_before"), cal.get("nll_after_out_of_fold")]])
    return (f"<p>Temperature T = {fitted:.3f} fitted on validation data (T &gt; 1 softens over-confident "
            f"probabilities); applied: {'yes' if cal.get('applied', True) else 'no (T = 1)'}.</p>" + choice + evidence
            + _table(["split", "ECE without T", "ECE with the fitted T"], rows))


def _label_calibration_section(cal: dict[str, Any]) -> str:
    """Multi-label runs: one temperature per label, each kept or not by its own evidence."""
    rows = [[label, c["fitted"], "yes" if c["applied"] else "no", c["validation_ece"], c["ece_after_out_of_fold"]]
            for label, c in cal["per_label"].items()]
    splits = [[split, cal["ece_before"].get(split), cal["ece_after"].get(split)] for split in cal["ece_before"]]
    return (f"<p>A temperature per label, fitted on validation data and kept for {cal['labels_scaled']} of "
            f"{len(rows)} labels (where it lowers that label's out-of-fold ECE and NLL).</p>"
            + _table(["label", "fitted T", "applied", "validation ECE", "ECE with T, out of fold"], rows)
            + _table(["split", "mean label ECE before", "after (kept temperatures)"], splits))


def _warnings_section(run: Path, metrics: dict[str, Any], found: list[str]) -> str:
    """Every warning of training (the summary's), of evaluations on other files, and of the
    report's own checks (``found``), so that none is missed by a reviewer."""
    held_out = [s for s in ("validation", "test") if isinstance(metrics.get(s), dict)]
    lines = [("training", line) for line in warnings_for(metrics, held_out)]
    folder = run / "eval"
    for other in sorted(folder.iterdir()) if folder.is_dir() else []:
        path = other / "metrics.json"
        if other.name not in held_out and path.is_file():
            try:
                lines += [(f"evaluate {other.name}", line) for line in json.loads(path.read_text("utf-8")).get("warnings", [])]
            except (ValueError, AttributeError):
                lines.append((f"evaluate {other.name}", f"{path} cannot be read"))
    lines += [("report", line) for line in found]
    if not lines:
        return "<p>none: no one-class predictions, every split above the majority baseline and large enough</p>"
    return "".join(f"<p class=warning>warning ({html.escape(where)}): {html.escape(line)}</p>" for where, line in lines)


def _challengers_section(run: Path) -> str:
    """The leaderboard of challengers scored on the same test split (``leaderboard.json``)."""
    path = run / LEADERBOARD
    rows = json.loads(path.read_text(encoding="utf-8"))
    body = [[name, row.get("roc_auc"), (f"{row['roc_auc_interval'][0]:.3f} to {row['roc_auc_interval'][1]:.3f}"
                                        if row.get("roc_auc_interval") else ""), row.get("ks"), row.get("accuracy")]
            for name, row in rows.items()]
    return ("<p class=muted>the model, its members and the models a risk team already has, each with its own "
            "settings, on the same test rows</p>" + _table(["model", "ROC-AUC", "95% interval", "KS", "accuracy"], body))


def _fairness_section(run: Path, model: FintuneModel, groups: list[str]) -> str:
    if not groups:
        return "<p class=muted>no group columns given (fintune report RUN --groups COL,...)</p>"
    result = trust.fairness(run, groups, model=model)
    parts = []
    for column, table in result["before"].items():
        rows = [[g, r["count"], r["selection_rate"], r["accuracy"], r["tpr"], r["fpr"]] for g, r in table["groups"].items()]
        parts.append(f"<h3>{html.escape(column)}</h3>" + _table(
            ["group", "rows", "selection rate", "accuracy", "TPR", "FPR"], rows)
            + f"<p>demographic parity difference {_fmt(table['demographic_parity_difference'])}, "
              f"equalized odds difference {_fmt(table['equalized_odds_difference'])}</p>")
    parts += [f"<p class=warning>warning: {html.escape(line)}</p>" for line in result.get("warnings", [])]
    return "".join(parts)


def _robustness_section(run: Path, model: FintuneModel, found: list[str]) -> str:
    if not task_of(model.task).scores_classes:
        return "<p class=muted>the perturbation suite scores classification models</p>"
    result = trust.robustness(run, model=model)
    found += [f"robustness: {line}" for line in result.get("warnings", [])]
    flags = "".join(f"<p class=warning>warning: {html.escape(line)}</p>" for line in result.get("warnings", []))
    rows = [[name, r["n"], "should change" if r["should_change"] else "should not change",
             r.get("accuracy_original"), r.get("accuracy_perturbed"), percent(r.get("flip_rate"))]
            for name, r in result["perturbations"].items()]
    return (f"<p>accuracy on the unchanged split: {number(result['accuracy'])}</p>" + flags
            + _table(["perturbation", "rows", "label", "accuracy before", "accuracy after", "flipped"], rows))


def _explain_section(run: Path, model: FintuneModel) -> str:
    if model.explanation_method is None:
        return ("<p class=muted>explanations are implemented for classification with encoder and feature "
                "models</p>")
    examples, table = load_split(run, trust.held_out_split(run), model)
    picks = list(range(min(EXAMPLES, len(examples))))
    blocks = []
    for i in picks:
        exp = explain(model, examples, i, table)
        truth = _truth(model.label_names, examples.labels[i])
        if model.explanation_method in ("integrated_gradients", "windows"):
            body = exp.to_html()
        else:
            body = (f"<b>{html.escape(exp.label)}</b> ({exp.probability:.2f}) " + _table(
                ["column = value", "change in P(predicted) when removed"], [[p, a] for p, a in exp.top(8)]))
        blocks.append(f'<div class="example"><span class=muted>true label: {html.escape(truth)}</span><br>{body}</div>')
    importance = ""
    if model.features is not None:
        scores = trust.permutation_importance(model, examples, table)
        importance = "<h3>Permutation importance (accuracy drop when a column is shuffled)</h3>" + _table(
            ["column", "accuracy drop"], [[c, v] for c, v in scores[:15]])
    method = {"integrated_gradients": "Integrated Gradients on the input embeddings (green pushes toward the "
                                      "predicted label, red against)",
              "windows": "each window's drop in P(predicted) when the document is read without it; then Integrated "
                         "Gradients over the words of the window that moved it most"}.get(
        model.explanation_method, "occlusion: each column set to its training mean or to missing")
    return f"<p class=muted>{method}</p>" + "".join(blocks) + importance


def _truth(names: list[str], label: Any) -> str:
    """One row's true label: a class id, or a multi-label row's 0/1 per label."""
    if np.ndim(label):
        return ", ".join(name for name, held in zip(names, label) if held) or "(none)"
    return names[int(label)]


def write_report(run: str | Path, *, groups: list[str] | None = None, output: str | Path | None = None) -> Path:
    """Write the HTML report of a finished run and return its path."""
    start = time.perf_counter()
    run = Path(run)
    metrics = read_metrics(run)
    model = FintuneModel.load(run)
    card = run / "model" / "README.md"
    steps: list[tuple[str, Callable[[], str]]]
    found: list[str] = []  # the report's own checks' warnings, shown at the top with training's
    if model.has_scores:
        steps = [
            ("Model", lambda: _facts(model, metrics)),
            ("Data", lambda: _data_section(run)),
            ("Metrics", lambda: _metrics_section(run, metrics)),
            *([("Challengers", lambda: _challengers_section(run))] if (run / LEADERBOARD).exists() else []),
            ("Calibration", lambda: _calibration_section(metrics)),
            ("Fairness", lambda: _fairness_section(run, model, groups or [])),
            ("Robustness", lambda: _robustness_section(run, model, found)),
            ("Explanations", lambda: _explain_section(run, model)),
        ]
    elif model.chats is None:  # generated answers: their scores, lengths, refusals, the worst of them
        steps = [
            ("Model", lambda: _facts(model, metrics)),
            ("Data", lambda: _data_section(run)),
            ("Metrics", lambda: _generation_metrics_section(metrics)),
            ("Answers", lambda: _answers_section(run, metrics)),
        ]
    else:
        raise FintuneError(f"the HTML report reviews class probabilities, values and generated answers; for the "
                           f"{model.task} run {run} read eval/<split>/report.md (and the per-type scores beside it)")
    steps.append(("Model card", lambda: _card_html(card) if card.exists() else ""))
    sections = []
    # Robustness and explanations run the model over the split: say what is running, and how long each took.
    for i, (title, build) in enumerate(steps, 1):
        began = time.perf_counter()
        with console.status(f"report {i}/{len(steps)}: {title.lower()}"):
            sections.append((title, build()))
        console.print(f"report {i}/{len(steps)}: {title.lower()} ({duration(time.perf_counter() - began)})",
                      highlight=False)
    sections.insert(0, ("Warnings", _warnings_section(run, metrics, found)))
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    seconds = time.perf_counter() - start
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>fintune report: {html.escape(run.name)}"
            f"</title><style>{STYLE}</style></head><body><h1>Model report: {html.escape(run.name)}</h1>"
            f"<p class=muted>written by fintune in {duration(seconds)} (m:ss)</p>{body}</body></html>")
    out = Path(output) if output else run / REPORT
    write_text(out, page, "report")
    console.print(f"report written to [bold]{out}[/] ({duration(seconds)})", soft_wrap=True)
    return out


def _card_html(card: Path) -> str:
    """The model card as HTML: its Hub metadata as a table, its Markdown rendered (raw HTML in
    the card is escaped, not passed through)."""
    from huggingface_hub import ModelCard
    from markdown_it import MarkdownIt

    parsed = ModelCard.load(card)
    meta = parsed.data.to_dict()
    rows = [[key, ", ".join(map(str, value)) if isinstance(value, list) else value]
            for key, value in meta.items() if key != "model-index" and value not in (None, [], "")]
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(parsed.text)
    return _table(["card metadata", "value"], rows) + f'<div class="card">{body}</div>'
