"""Chinese financial text (CFLEB FinFE): forum-post sentiment, the user's baseline against fintune.

FinFE is 16,157 stock-forum posts with 3 classes (negative / neutral / positive), read at run
time from ../shared/data/cfleb_chinese_finance (never copied). Only its training split is
public here, so the benchmark cuts its own validation split: 15% of the distinct texts
(stratified by label, a text and its repeats on one side only), seed 0. Every row trains on
the same 13,721 rows (repeats kept, as scikit-learn reads them; fintune's own cleaning would
drop repeats and conflicting labels, leaving 9,249) and is scored on the same validation posts.

Rows:
  tfidf_char_logistic  character 1-3-gram TF-IDF + logistic regression, C and class weights by
                       5-fold CV on training (scikit-learn, fitted outside fintune: the baseline a
                       user has)
  fintune_bow_char     fintune's model.kind bow with model.bow.analyzer char, n-grams up to 3
  minilm_full          fintune with MiniLM (English vocabulary): the unknown-token problem, with
                       the coverage the data check measures
  qwen_head_lora       qwen0.5b with a classification head, LoRA r=16, on --qwen-rows training
                       posts (3-7 posts a second on this CPU when nothing else runs)

    python benchmarks/chinese_finance.py --rows tfidf_char_logistic,fintune_bow_char,minilm_full
    python benchmarks/chinese_finance.py --rows qwen_head_lora --qwen-rows 1000
    python benchmarks/chinese_finance.py --rows finnl_tfidf_char_logistic,finnl_fintune_bow_char
    python benchmarks/chinese_finance.py --rows finnl_qwen_head_lora --qwen-rows 3000 --epochs 1
    python benchmarks/chinese_finance.py --rows finre_tfidf_char_logistic,finre_fintune_bow_char
    python benchmarks/chinese_finance.py --rows finnl_minilm_full,finre_minilm_full --epochs 1

FinNL (multi-label news categories) rows are prefixed finnl_, FinRE (relations) rows finre_,
each with the same four models (the baseline, bag of characters, MiniLM, the Qwen head);
both are documented in cfleb_tasks.py.

Writes benchmarks/results/chinese_finance.json, keyed by row (FinFE accuracy, weighted and
macro F1, train seconds, rows trained on, the training text's unknown-token share).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cfleb_tasks
from common import emit, peak_rss_mb, print_table, run_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cfleb_chinese_finance"
RESULT = ROOT / "benchmarks" / "results" / "chinese_finance.json"
RUNS = ROOT / "runs" / "bench_chinese"
LABELS = ["negative", "neutral", "positive"]
KEYS = ["accuracy", "weighted_f1", "macro_f1", "train_rows", "validation_rows", "train_seconds",
        "unknown_token_share"]
ROWS = ["tfidf_char_logistic", "fintune_bow_char", "minilm_full", "qwen_head_lora", "finnl_tfidf_char_logistic",
        "finnl_fintune_bow_char", "finnl_minilm_full", "finnl_qwen_head_lora", "finre_tfidf_char_logistic",
        "finre_fintune_bow_char", "finre_minilm_full", "finre_qwen_head_lora"]


def finfe_splits(out: Path) -> tuple[Path, Path]:
    """FinFE's posts as train.csv and valid.csv in ``out``: 15% of the distinct texts held out,
    stratified by label (a text's repeats stay on its side; a text given two labels keeps its
    first)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    rows = json.loads((DATA / "finfe_train.json").read_text(encoding="utf-8"))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["label"] = frame["label"].map(dict(enumerate(LABELS)))
    first = frame.drop_duplicates("text")
    train_texts, valid_texts = train_test_split(first["text"], test_size=0.15, stratify=first["label"],
                                                random_state=0)
    train, valid = frame[frame["text"].isin(set(train_texts))], first[first["text"].isin(set(valid_texts))]
    train_path, valid_path = out / "finfe_train.csv", out / "finfe_valid.csv"
    train.to_csv(train_path, index=False)
    valid.to_csv(valid_path, index=False)
    return train_path, valid_path


def run_tfidf(out: Path) -> dict:
    """Character 1-3-gram TF-IDF + logistic regression; C and class weighting by 5-fold CV."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    train_path, valid_path = finfe_splits(out)
    train, valid = pd.read_csv(train_path), pd.read_csv(valid_path)
    pipe = Pipeline([("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)),
                     ("clf", LogisticRegression(max_iter=3000))])
    search = GridSearchCV(pipe, {"clf__C": [1, 3, 10, 30], "clf__class_weight": [None, "balanced"]},
                          scoring="accuracy", cv=5, n_jobs=1)
    started = time.perf_counter()
    search.fit(train["text"], train["label"])
    seconds = time.perf_counter() - started
    pred = search.predict(valid["text"])
    return {"accuracy": float(accuracy_score(valid["label"], pred)),
            "weighted_f1": float(f1_score(valid["label"], pred, average="weighted")),
            "macro_f1": float(f1_score(valid["label"], pred, average="macro")),
            "train_rows": int(len(train)), "validation_rows": int(len(valid)), "train_seconds": round(seconds, 1),
            "best_c": search.best_params_["clf__C"], "class_weight": search.best_params_["clf__class_weight"],
            "unknown_token_share": 0.0}


def run_fintune(row: str, out: Path, epochs: int, qwen_rows: int) -> dict:
    import pandas as pd

    from fintune import api
    from fintune.config import validate_config
    from fintune.catalogue import fetch

    train_path, valid_path = finfe_splits(out)
    if row == "qwen_head_lora":
        sample = pd.read_csv(train_path).sample(frac=1.0, random_state=0).head(qwen_rows)
        train_path = out / f"finfe_train_{qwen_rows}.csv"
        sample.to_csv(train_path, index=False)
    # The baseline's rows: repeated posts kept (FinFE repeats many), as scikit-learn reads the file.
    data = {"train": str(train_path), "validation": str(valid_path), "text_column": "text", "label_column": "label",
            "label_names": LABELS, "split": {"test_size": 0.0},
            "clean": {"drop_duplicates": False, "drop_conflicts": False}}
    train = {"epochs": epochs, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "warmup_fraction": 0.1,
             "checkpoint_every": 0}
    model: dict = {"fintune_bow_char": {"kind": "bow", "bow": {"analyzer": "char", "ngram_max": 3},
                                        "linear": {"C": [1, 3, 10, 30]}},
                   "minilm_full": {"backbone": "minilm", "max_length": 128},
                   "qwen_head_lora": {"backbone": "qwen0.5b", "kind": "causal", "head": "classifier",
                                      "max_length": 128}}[row]
    strategy = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.05} if row == "qwen_head_lora" else {"name": "full"}
    if row == "qwen_head_lora":
        train.update(batch_size=16, eval_batch_size=32, lr=1e-4, weight_decay=0.0)
    if "backbone" in model:
        fetch(model["backbone"])
    cfg = validate_config({"output_dir": str(RUNS / row), "seed": 42, "data": data, "model": model,
                           "strategy": strategy, "train": train})
    result = api.train(cfg, overwrite=True, show_progress=sys.stderr.isatty())
    val, training = result.metrics["validation"], result.metrics["training"]
    check = json.loads((result.run_dir / "data_check.json").read_text(encoding="utf-8"))
    coverage = (check.get("coverage") or {}).get("train", {})  # none for bow: it has no tokenizer
    return {"accuracy": val["accuracy"], "weighted_f1": val["weighted_f1"], "macro_f1": val["macro_f1"],
            "train_rows": training["train_rows"], "validation_rows": val["n"],
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "unknown_token_share": coverage.get("unknown_token_share", 0.0),
            "unknown_char_share": coverage.get("unknown_char_share"),
            "data_warnings": result.metrics.get("data_warnings", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS[:3]))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--qwen-rows", type=int, default=1000, help="qwen_head_lora: training posts (a fixed shuffle)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            if args.child == "finnl_tfidf_char_logistic":
                row = cfleb_tasks.run_tfidf(DATA, Path(tmp))
            elif args.child == "finre_tfidf_char_logistic":
                row = cfleb_tasks.run_finre_tfidf(DATA, Path(tmp))
            elif args.child.startswith("finre_"):
                row = cfleb_tasks.run_finre_fintune(args.child, DATA, Path(tmp), RUNS, args.epochs, args.qwen_rows)
            elif args.child.startswith("finnl_"):
                row = cfleb_tasks.run_fintune(args.child, DATA, Path(tmp), RUNS, args.epochs, args.qwen_rows)
            else:
                row = (run_tfidf(Path(tmp)) if args.child == "tfidf_char_logistic"
                       else run_fintune(args.child, Path(tmp), args.epochs, args.qwen_rows))
        emit({**row, "peak_rss_mb": peak_rss_mb()})
        return
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT,
                       extra_args=["--qwen-rows", str(args.qwen_rows)])
    print_table({k: v for k, v in results.items() if not k.startswith(("finnl_", "finre_"))}, KEYS, "row")
    print_table({k: v for k, v in results.items() if k.startswith(("finnl_", "finre_"))}, cfleb_tasks.KEYS, "row")


if __name__ == "__main__":
    main()
