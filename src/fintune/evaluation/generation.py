"""Metrics of generated answers against references, and their on-disk report.

Exact match and token F1 follow SQuAD's definitions (lower case, no punctuation or
articles). When the references are a small closed set (sentiment words, yes/no), the
answers are also scored as class labels the way FinGPT reports its benchmarks: accuracy
and weighted/macro F1 over the reference classes, an answer that names no class (or
several) counting as wrong. Those numbers compare directly with the encoders'.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

MAX_CLASSES = 20  # at most this many distinct references are scored as classes too
# What the Markdown and HTML reports show of a generation evaluation, in this order.
GENERATION_METRICS = ("n", "exact_match", "token_f1", "accuracy", "weighted_f1", "macro_f1", "unmatched", "loss",
                      "answer_words_mean", "answer_words_median", "answer_words_max", "empty_answers", "refusals")
UNMATCHED = "(no class)"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed (SQuAD)."""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_PUNCT)).split())


def token_f1(reference: str, answer: str) -> float:
    """F1 of the normalized words shared by answer and reference."""
    ref, ans = normalize(reference).split(), normalize(answer).split()
    if not ref or not ans:
        return float(ref == ans)
    common = sum((Counter(ref) & Counter(ans)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ans), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_class(answer: str, classes: list[str]) -> str:
    """The class an answer names: equal after normalizing, else the one class it contains."""
    norm = normalize(answer)
    if norm in classes:
        return norm
    named = [c for c in classes if re.search(rf"\b{re.escape(c)}\b", norm)]
    return named[0] if len(named) == 1 else UNMATCHED


def generation_metrics(references: list[str], answers: list[str]) -> dict[str, Any]:
    """``exact_match`` and ``token_f1``; with a closed set of references also ``accuracy``,
    ``weighted_f1``, ``macro_f1`` and ``unmatched`` (the share of answers naming no class)."""
    if len(references) != len(answers):
        raise ValueError(f"{len(references)} references but {len(answers)} answers")
    n = len(references)
    metrics: dict[str, Any] = {
        "n": n,
        "exact_match": float(np.mean([normalize(r) == normalize(a) for r, a in zip(references, answers)])) if n else None,
        "token_f1": float(np.mean([token_f1(r, a) for r, a in zip(references, answers)])) if n else None,
    }
    classes = sorted({normalize(r) for r in references})
    if n and len(classes) <= MAX_CLASSES:
        truth = [normalize(r) for r in references]
        named = [answer_class(a, classes) for a in answers]
        metrics.update(
            classes=classes,
            accuracy=float(np.mean([t == p for t, p in zip(truth, named)])),
            weighted_f1=float(f1_score(truth, named, labels=classes, average="weighted", zero_division=0)),
            macro_f1=float(f1_score(truth, named, labels=classes, average="macro", zero_division=0)),
            unmatched=float(np.mean([p == UNMATCHED for p in named])),
        )
    return metrics


# Openings of an answer that declines instead of answering (English and Chinese instruct models).
REFUSALS = re.compile(r"^\s*(i'?m sorry|i am sorry|sorry,|i can(no|')t|i am unable|i'?m unable|as an ai|i do not have|"
                      r"i don'?t have|抱歉|对不起|我无法|我不能|作为一个?人工智能)", re.IGNORECASE)


def answer_statistics(answers: list[str]) -> dict[str, Any]:
    """How long the answers are (words), how many are empty, and how many decline to answer."""
    words = np.array([len(str(a).split()) for a in answers]) if answers else np.zeros(0)
    return {
        "answer_words_mean": float(words.mean()) if len(words) else None,
        "answer_words_median": float(np.median(words)) if len(words) else None,
        "answer_words_max": int(words.max()) if len(words) else None,
        "empty_answers": int(sum(not str(a).strip() for a in answers)),
        "refusals": int(sum(bool(REFUSALS.match(str(a))) for a in answers)),
    }


def write_generation_evaluation(out_dir: Path, references: list[str], answers: list[str], inputs: list[str],
                                title: str, instructions: list[str] | None = None,
                                extra: dict[str, Any] | None = None, examples: int = 10) -> dict[str, Any]:
    """Write ``metrics.json``, ``predictions.jsonl`` (input, reference, answer) and a Markdown
    ``report.md`` with the metrics and the first wrong answers; return the metrics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {**generation_metrics(references, answers), **answer_statistics(answers), **(extra or {})}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for i, (text, ref, ans) in enumerate(zip(inputs, references, answers)):
            record = {"instruction": instructions[i]} if instructions else {}
            record.update(input=text, reference=ref, answer=ans, exact=normalize(ref) == normalize(ans))
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    lines = [f"# Generation: {title}", "", "| metric | value |", "|---|---|"]
    for name in GENERATION_METRICS:
        value = metrics.get(name)
        if value is not None:
            lines.append(f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |")
    wrong = [(t, r, a) for t, r, a in zip(inputs, references, answers) if normalize(r) != normalize(a)][:examples]
    if wrong:
        lines += ["", "## Wrong answers (first few)", "", "| input | reference | answer |", "|---|---|---|"]
        lines += [f"| {_cell(t)} | {_cell(r)} | {_cell(a)} |" for t, r, a in wrong]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return metrics


def _cell(text: str, width: int = 120) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width - 1] + "…"
