"""Scarce labels and long documents on TFNS tweets (train -> sent_valid.csv): a few-shot
learning curve (full fine-tuning vs SetFit), weak labels only, label noise found by
cleanlab, and long documents built from tweets.

Rows (each runs in a process of its own; rows already in the results file and not rerun are kept):
- ``curve_{full,setfit}_{8,16,32,64}``: that many labeled tweets per class, 5 random draws
  (seeds 0-4) from sent_train.csv, MiniLM; mean and std of weighted F1 on all of sent_valid.
  No early stopping and no checkpoint choice: sent_valid is only read for the score.
  The all-labels reference is text_models.json's ``minilm_full`` row (same split).
- ``weak_lexicon_direct``: the Loughran-McDonald lexicon applied to sent_valid directly
  (more positive words: Bullish, more negative: Bearish, else Neutral).
- ``weak_label_model``: no gold label used in training. Keyword, regex and lexicon functions
  (written once from finance vocabulary, not fitted to any split) label sent_train's texts;
  Snorkel's LabelModel combines them; MiniLM trains on the result weighted by confidence.
  Each function's coverage and accuracy on sent_train (gold read for the report only).
- ``noise_clean``, ``noise_noisy``, ``noise_dropped``: 10% of the training labels moved to
  another class at random (seed 0); precision and recall of ``--label-issues`` at finding
  the flipped rows; MiniLM trained on clean labels, noisy labels, and noisy labels without
  the flagged rows.
- ``long_truncated``, ``long_text``, ``long_text_max``: documents of ~150 neutral tweets
  (3,000+ tokens) with one Bearish or Bullish tweet placed past token 1,000, labeled by that
  tweet; a truncating MiniLM (128 tokens) against ``model.kind: long_text`` (windows of 128,
  attention pooling; ``_max``: max pooling);
  accuracy on documents built from sent_valid, and prediction throughput (documents/s,
  tokens/s) of the long-text model. ``long_text_tuned``: the same long-text model started
  from the ``noise_clean`` row's encoder (MiniLM fine-tuned on sent_train's tweets), as a
  team with sentence labels and a few labeled documents would do. ``long_window_vote``: no
  document training at all; that sentence model scores overlapping 40-word chunks and each
  document takes the class of its most confident chunk.

    python benchmarks/scarce_labels.py --rows curve_full_16,curve_setfit_16

Writes benchmarks/results/scarce_labels.json.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import peak_rss_mb, print_table, rows_to_run, run_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "scarce_labels.json"
RUNS = ROOT / "runs" / "bench_scarce_labels"
LABELS = ["Bearish", "Bullish", "Neutral"]
SHOTS = (8, 16, 32, 64)
DRAWS = 5
ROWS = ([f"curve_{m}_{k}" for m in ("full", "setfit") for k in SHOTS]
        + ["weak_lexicon_direct", "weak_label_model", "noise_clean", "noise_noisy", "noise_dropped",
           "long_truncated", "long_text", "long_text_max", "long_text_tuned", "long_window_vote"])
KEYS = ["weighted_f1", "weighted_f1_std", "accuracy", "precision", "recall", "docs_per_s", "tokens_per_s",
        "seconds"]

# Labeling functions: finance vocabulary of analyst actions and price moves, written once.
BULLISH = ["upgrade", "upgraded", "upgrades", "outperform", "overweight", "buy rating", "beats", "tops", "surges",
           "soars", "jumps", "rallies", "climbs", "record high", "raises guidance", "raises dividend", "bullish",
           "price target raised", "raised to buy"]
BEARISH = ["downgrade", "downgraded", "downgrades", "underperform", "underweight", "sell rating", "misses",
           "plunges", "slumps", "sinks", "tumbles", "tanks", "cuts guidance", "lowers guidance", "warns", "bearish",
           "lawsuit", "bankruptcy", "layoffs", "price target cut", "cut to sell"]
NEUTRAL = r"\b(to (report|present|host|announce)|conference call|webcast|declares (quarterly )?dividend|" \
          r"annual meeting|earnings (preview|date)|what to (watch|expect))\b"


def _data(train: str, **extra: object) -> dict:
    return {"train": train, "validation": str(DATA / "sent_valid.csv"), "text_column": "text",
            "label_column": "label", "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
            "split": {"test_size": 0.0}, **extra}


def _train(name: str, data: dict, strategy: dict, train: dict, model: dict | None = None) -> dict:
    """Train MiniLM with ``train`` settings; the run's validation (sent_valid) metrics."""
    from fintune import api
    from fintune.config import validate_config

    cfg = validate_config({"output_dir": str(RUNS / name), "seed": 42, "data": data, "strategy": strategy,
                           "model": {"backbone": "minilm", "max_length": 64, **(model or {})},
                           "train": {"checkpoint_every": 0, "early_stopping": None, "warmup_fraction": 0.1,
                                     **train}})
    result = api.train(cfg, overwrite=True, show_progress=sys.stderr.isatty())
    return {**result.metrics["validation"], "train_seconds": result.metrics["training"]["train_seconds"]}


# ------------------------------------------------------------------ learning curve

FULL = {"epochs": 15, "batch_size": 8, "lr": 1e-4}
SETFIT_HEAD = {"epochs": 100, "batch_size": 16, "lr": 0.05}


def run_curve(method: str, shots: int) -> dict:
    train = pd.read_csv(DATA / "sent_train.csv")
    scores, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for draw in range(DRAWS):
            few = train.groupby("label", group_keys=False).sample(n=shots, random_state=draw)
            path = Path(tmp) / f"few_{draw}.csv"
            few.to_csv(path, index=False)
            started = time.perf_counter()
            if method == "full":
                val = _train(f"curve_{method}_{shots}", _data(str(path)), {"name": "full"}, FULL)
            else:
                val = _train(f"curve_{method}_{shots}", _data(str(path)), {"name": "setfit"}, SETFIT_HEAD,
                             {"kind": "probe"})
            seconds.append(time.perf_counter() - started)
            scores.append(val["weighted_f1"])
    return {"weighted_f1": float(np.mean(scores)), "weighted_f1_std": float(np.std(scores, ddof=1)),
            "draws": [round(s, 4) for s in scores], "labels_per_class": shots,
            "seconds": round(float(np.sum(seconds)), 1), "seconds_per_draw": round(float(np.mean(seconds)), 1)}


# ------------------------------------------------------------------ weak labels

def _label_config(texts: Path, out: Path) -> dict:
    return {"data": {"path": str(texts), "text_column": "text", "gold_column": "gold"},
            "labels": LABELS,
            "functions": [
                {"kind": "keywords", "name": "bullish_words", "label": "Bullish", "keywords": BULLISH},
                {"kind": "keywords", "name": "bearish_words", "label": "Bearish", "keywords": BEARISH},
                {"kind": "regex", "name": "routine_news", "label": "Neutral", "pattern": NEUTRAL},
                {"kind": "lexicon", "name": "loughran_mcdonald", "positive": "Bullish", "negative": "Bearish",
                 "neutral": "Neutral"}],
            "output": str(out)}


def run_weak(row: str) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from fintune import api
    from fintune.config.labeling import LabelConfig
    from fintune.labeling import lexicon_polarity

    if row == "weak_lexicon_direct":
        valid = pd.read_csv(DATA / "sent_valid.csv")
        started = time.perf_counter()
        polarity, _ = lexicon_polarity(valid["text"].tolist())
        pred = np.where(polarity > 0, 1, np.where(polarity < 0, 0, 2))
        return {"weighted_f1": float(f1_score(valid["label"], pred, average="weighted")),
                "accuracy": float(accuracy_score(valid["label"], pred)),
                "seconds": round(time.perf_counter() - started, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "texts.csv"
        train = pd.read_csv(DATA / "sent_train.csv")
        # The gold column is read by the labeling report alone (each function's accuracy).
        train.assign(gold=[LABELS[y] for y in train["label"]])[["text", "gold"]].to_csv(texts, index=False)
        started = time.perf_counter()
        labeled = api.label(LabelConfig.model_validate(_label_config(texts, Path(tmp) / "weak.csv")))
        label_seconds = time.perf_counter() - started
        # sent_valid's labels are ids 0-2: the weak file gets the same ids (label_map names both).
        weak = pd.read_csv(labeled.output)
        weak.assign(label=[LABELS.index(y) for y in weak["label"]]).to_csv(labeled.output, index=False)
        val = _train(row, {**_data(str(labeled.output)), "weight_column": "confidence"},
                     {"name": "full"}, {"epochs": 2, "batch_size": 32, "lr": 1e-4})
    return {"weighted_f1": val["weighted_f1"], "accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
            "labeled_rows": labeled.summary["labeled"], "coverage": labeled.summary["coverage"],
            "weak_label_accuracy": labeled.summary["accuracy_on_labeled"], "functions": labeled.functions,
            "label_seconds": round(label_seconds, 1), "train_seconds": val["train_seconds"],
            "seconds": round(time.perf_counter() - started, 1)}


# ------------------------------------------------------------------ label noise

def _noisy(out: Path) -> tuple[Path, set[int]]:
    train = pd.read_csv(DATA / "sent_train.csv")
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(train), size=len(train) // 10, replace=False)
    shift = rng.integers(1, len(LABELS), size=len(flipped))  # to one of the other classes
    train.loc[flipped, "label"] = (train.loc[flipped, "label"].to_numpy() + shift) % len(LABELS)
    path = out / "noisy.csv"
    train.to_csv(path, index=False)
    return path, {int(i) + 1 for i in flipped}  # file rows count from 1


def run_noise(row: str) -> dict:
    from fintune import api
    from fintune.config import validate_config
    from fintune.data import prepare_data

    settings = {"epochs": 2, "batch_size": 32, "lr": 1e-4}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if row == "noise_clean":
            val = _train(row, _data(str(DATA / "sent_train.csv")), {"name": "full"}, settings)
            return {**_scores(val), "seconds": round(time.perf_counter() - started, 1)}
        noisy, flipped = _noisy(Path(tmp))
        if row == "noise_noisy":
            val = _train(row, _data(str(noisy)), {"name": "full"}, settings)
            return {**_scores(val), "flipped": len(flipped), "seconds": round(time.perf_counter() - started, 1)}
        cfg = validate_config({"output_dir": str(Path(tmp) / "check"), "data": _data(str(noisy))})
        report = api.data_check(cfg, label_issues=True, output=Path(tmp) / "check" / "data_check.json")
        found = set(pd.read_csv(Path(tmp) / "check" / "label_issues.csv")["row"])
        checked = set(prepare_data(cfg.data, cfg.task, cfg.seed).train.rows.tolist())
        hits = len(found & flipped)
        issue_seconds = time.perf_counter() - started
        val = _train(row, _data(str(noisy), clean={"replace_urls": True, "drop_label_issues": True}),
                     {"name": "full"}, settings)
    return {**_scores(val), "precision": hits / max(len(found), 1), "recall": hits / max(len(flipped & checked), 1),
            "flagged": len(found), "flipped": len(flipped),
            "quick_model_accuracy": report["label_issues_found"]["quick_model_accuracy"],
            "label_issue_seconds": round(issue_seconds, 1), "seconds": round(time.perf_counter() - started, 1)}


def _scores(val: dict) -> dict:
    return {"weighted_f1": val["weighted_f1"], "accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
            "train_seconds": val["train_seconds"]}


# ------------------------------------------------------------------ long documents

FILLER_TWEETS = 150  # ~20 tokens each: 3,000+ tokens per document
LONG = {"max_length": 128, "kind": "long_text", "long_text": {"stride": 112, "max_windows": 32}}


def long_documents(source: Path, n: int, seed: int) -> pd.DataFrame:
    """``n`` documents of neutral tweets with one Bearish or Bullish tweet past the 50th tweet."""
    frame = pd.read_csv(source)
    neutral = frame.loc[frame["label"] == 2, "text"].tolist()
    decisive = {0: frame.loc[frame["label"] == 0, "text"].tolist(), 1: frame.loc[frame["label"] == 1, "text"].tolist()}
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        tweets = rng.sample(neutral, FILLER_TWEETS)
        tweets.insert(rng.randrange(50, FILLER_TWEETS), rng.choice(decisive[label]))
        rows.append({"text": " ".join(tweets), "label": LABELS[label]})
    return pd.DataFrame(rows)


def _sentence_model(row: str) -> Path:
    """The noise_clean row's run (MiniLM fine-tuned on sent_train's tweets), which ``row`` builds on."""
    run = RUNS / "noise_clean"
    if not (run / "model").is_dir():
        raise SystemExit(f"{row} builds on the noise_clean row's model: run --rows noise_clean first")
    return run


def run_long(row: str) -> dict:
    from fintune import FintuneModel

    # Sentence labels first, documents second: long_text_tuned starts from a tweet classifier's
    # encoder (none of sent_valid's tweets, which the test documents are built from).
    tuned = {**LONG, "backbone": str(_sentence_model(row) / "model")} if row == "long_text_tuned" else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # Documents for training and validation from sent_train's tweets, for the test from sent_valid's.
        long_documents(DATA / "sent_train.csv", 120, 0).to_csv(out / "train.csv", index=False)
        long_documents(DATA / "sent_train.csv", 40, 1).to_csv(out / "valid.csv", index=False)
        test = long_documents(DATA / "sent_valid.csv", 200, 2)
        test.to_csv(out / "test.csv", index=False)
        data = {"train": str(out / "train.csv"), "validation": str(out / "valid.csv"), "test": str(out / "test.csv"),
                "text_column": "text", "label_column": "label", "clean": {"replace_urls": True}}
        model = {"long_text": LONG, "long_text_max": {**LONG, "long_text": {**LONG["long_text"], "pooling": "max"}},
                 "long_truncated": {"max_length": 128}, "long_text_tuned": tuned}[row]
        _train(row, data, {"name": "full"}, {"epochs": 3, "batch_size": 4, "lr": 1e-4}, model)
        recorded = json.loads((RUNS / row / "metrics.json").read_text())
        metrics, validation = recorded["test"], recorded["validation"]
        predictor = FintuneModel.load(RUNS / row)
        begun = time.perf_counter()
        predictor.predict(test, batch_size=8)
        seconds = time.perf_counter() - begun
    encoded = predictor.inputs(predictor.as_examples(test))
    tokens = sum(len(w) for doc in encoded["windows"] for w in doc) if "windows" in encoded else sum(
        len(ids) for ids in encoded["input_ids"])
    return {"accuracy": metrics["accuracy"], "weighted_f1": metrics["weighted_f1"], "documents": len(test),
            "validation_accuracy": validation["accuracy"],
            "mean_document_tokens": round(float(np.mean([len(predictor.tokenizer(t)["input_ids"]) for t in test["text"][:50]])), 0),
            "docs_per_s": round(len(test) / seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
            "seconds": round(time.perf_counter() - started, 1)}


CHUNK_WORDS, CHUNK_STRIDE = 40, 30  # ~60 tokens: within the sentence model's 64


def run_window_vote() -> dict:
    """No document training: the noise_clean row's sentence model scores overlapping chunks of
    each document, and the document takes the class (of its two) of the most confident chunk."""
    from fintune import FintuneModel

    run = _sentence_model("long_window_vote")
    started = time.perf_counter()
    test = long_documents(DATA / "sent_valid.csv", 200, 2)
    predictor = FintuneModel.load(run)
    chunks, owner = [], []
    for doc, text in enumerate(test["text"]):
        words = text.split()
        for start in range(0, max(len(words) - CHUNK_WORDS, 0) + 1, CHUNK_STRIDE):
            chunks.append(" ".join(words[start:start + CHUNK_WORDS]))
            owner.append(doc)
    begun = time.perf_counter()
    probs = pd.DataFrame(predictor.predict_proba(pd.DataFrame({"text": chunks}), batch_size=64))
    seconds = time.perf_counter() - begun
    best = probs[["Bearish", "Bullish"]].assign(doc=owner).groupby("doc").max()
    predicted = np.where(best["Bullish"] > best["Bearish"], "Bullish", "Bearish")
    accuracy = float(np.mean(predicted == test["label"].to_numpy()))
    tokens = sum(len(predictor.tokenizer(t)["input_ids"]) for t in test["text"])
    return {"accuracy": accuracy, "documents": len(test), "chunks": len(chunks),
            "docs_per_s": round(len(test) / seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
            "seconds": round(time.perf_counter() - started, 1)}


def child(row: str) -> dict:
    if row.startswith("curve_"):
        _, method, shots = row.split("_")
        result = run_curve(method, int(shots))
    elif row.startswith("weak_"):
        result = run_weak(row)
    elif row.startswith("noise_"):
        result = run_noise(row)
    elif row == "long_window_vote":
        result = run_window_vote()
    else:
        result = run_long(row)
    return {**result, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    rows = rows_to_run(__doc__, child, ",".join(ROWS))
    if rows is None:
        return
    results = run_rows(__file__, rows, 0, RESULT)
    print_table(results, KEYS, "row")


if __name__ == "__main__":
    main()
