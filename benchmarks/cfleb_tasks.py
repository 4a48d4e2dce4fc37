"""FinNL and FinRE rows of benchmarks/chinese_finance.py.

FinNL: multi-label news categories.

FinNL is 7,071 news items, each with 1-3 of 16 categories (space-separated). The file also
holds 31 rare label strings that are typos or fused names (中国大盘, 公司、, 躯体 ..., 45
occurrences in all); every row drops them and keeps the 16 categories of the benchmark's
description, so a model is never asked for a label it cannot learn. 15% of the distinct
texts (seed 0) are held out and score every row; fintune tunes its per-label thresholds on a
validation split it carves from the rest, the baseline its C and global threshold by 5-fold
cross-validation on the rest. Neither sees the held-out items.

FinRE: the relation (44, one of them `unknown`) between a head and a tail entity of a news
sentence, 13,486 items. 15% of the distinct sentences (seed 0) are held out, every item of a
sentence on one side; the held-out side keeps the first label of an item given two. Both sides
read the sentence with the entities marked (<e1>head</e1>, <e2>tail</e2>, as fintune's
data.entity_columns writes it); training keeps repeats and conflicting labels for every row,
as scikit-learn reads the file. Scores: micro F1 over the 43 real relations (`unknown` left
out, the benchmark's metric), macro F1, accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

CATEGORIES = ["中国", "外国", "公司", "新冠", "经济", "行业", "大盘", "政策", "国际", "政治", "期货", "能源", "债券",
              "房地产", "虚拟货币", "外汇"]
KEYS = ["micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "accuracy", "train_rows", "validation_rows",
        "train_seconds", "unknown_token_share"]


def finnl_splits(data: Path, out: Path) -> tuple[Path, Path]:
    """train.jsonl and held-out valid.jsonl in ``out``: text and the list of categories."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    rows = json.loads((data / "finnl_train.json").read_text(encoding="utf-8"))
    frame = pd.DataFrame([{"text": t, "labels": [x for x in labels.split() if x in CATEGORIES]} for t, labels in rows])
    first = frame.drop_duplicates("text")
    train_texts, held_texts = train_test_split(first["text"], test_size=0.15, random_state=0)
    train = frame[frame["text"].isin(set(train_texts))]
    held = first[first["text"].isin(set(held_texts))]
    paths = out / "finnl_train.jsonl", out / "finnl_valid.jsonl"
    train.to_json(paths[0], orient="records", lines=True, force_ascii=False)
    held.to_json(paths[1], orient="records", lines=True, force_ascii=False)
    return paths


def qwen_head(cfg: dict, max_length: int) -> None:
    """Qwen2.5-0.5B with a classification head and LoRA r=16, in place in ``cfg``."""
    from fintune.catalogue import fetch

    fetch("qwen0.5b")
    cfg["model"] = {"backbone": "qwen0.5b", "kind": "causal", "head": "classifier", "max_length": max_length}
    cfg["strategy"] = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.05}
    cfg["train"].update(batch_size=16, eval_batch_size=32, lr=2e-4, warmup_fraction=0.1)


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    return {"micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "samples_f1": float(f1_score(y, pred, average="samples", zero_division=1)),
            "subset_accuracy": float(np.mean((y == pred).all(axis=1)))}


def run_tfidf(data: Path, out: Path) -> dict:
    """Character 1-3-gram TF-IDF + one logistic regression per category (one-vs-rest): C by
    5-fold CV on micro F1, then one global threshold on out-of-fold probabilities."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MultiLabelBinarizer

    train_path, held_path = finnl_splits(data, out)
    train, held = pd.read_json(train_path, lines=True), pd.read_json(held_path, lines=True)
    binarizer = MultiLabelBinarizer(classes=CATEGORIES)
    y, y_held = binarizer.fit_transform(train["labels"]), binarizer.transform(held["labels"])
    pipe = Pipeline([("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)),
                     ("clf", OneVsRestClassifier(LogisticRegression(max_iter=3000)))])
    folds = KFold(5, shuffle=True, random_state=0)
    started = time.perf_counter()
    search = GridSearchCV(pipe, {"clf__estimator__C": [1, 3, 10, 30]}, scoring="f1_micro", cv=folds, n_jobs=1)
    search.fit(train["text"], y)
    oof = cross_val_predict(search.best_estimator_, train["text"], y, cv=folds, method="predict_proba")
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    best = float(grid[int(np.argmax([scores(y, (oof >= t).astype(int))["micro_f1"] for t in grid]))])
    seconds = time.perf_counter() - started
    probs = search.predict_proba(held["text"])
    return {**scores(y_held, (probs >= best).astype(int)), "micro_f1_at_0_5": scores(y_held, (probs >= 0.5).astype(int))[
        "micro_f1"], "train_rows": int(len(train)), "validation_rows": int(len(held)),
        "train_seconds": round(seconds, 1), "best_c": search.best_params_["clf__estimator__C"], "threshold": best}


def minilm(cfg: dict, max_length: int) -> None:
    """MiniLM, fully fine-tuned, in place in ``cfg``: an English encoder, to show what its
    vocabulary makes of Chinese (the data check's unknown-token share is in the row)."""
    cfg["model"] = {"backbone": "minilm", "max_length": max_length}
    cfg["strategy"] = {"name": "full"}
    cfg["train"].update(batch_size=32, lr=1e-4, weight_decay=0.01, warmup_fraction=0.1)


def bow(cfg: dict, cs: list[float]) -> None:
    """fintune's bag of characters (1-3-grams) with C by CV, in place in ``cfg``."""
    cfg["model"] = {"kind": "bow", "bow": {"analyzer": "char", "ngram_max": 3}, "linear": {"C": cs}}


def unknown_share(run_dir: Path) -> float:
    """The training text's unknown-token share from the run's data check (0: no tokenizer)."""
    check = json.loads((run_dir / "data_check.json").read_text(encoding="utf-8"))
    return ((check.get("coverage") or {}).get("train") or {}).get("unknown_token_share", 0.0)


# The model of each fintune row, by its name after the task prefix.
FINNL_MODELS = {"fintune_bow_char": lambda cfg: bow(cfg, [1, 3, 10, 30]), "minilm_full": lambda cfg: minilm(cfg, 160),
                "qwen_head_lora": lambda cfg: qwen_head(cfg, 160)}
FINRE_MODELS = {"fintune_bow_char": lambda cfg: bow(cfg, [3, 10, 30]), "minilm_full": lambda cfg: minilm(cfg, 128),
                "qwen_head_lora": lambda cfg: qwen_head(cfg, 128)}


def run_fintune(row: str, data: Path, out: Path, runs: Path, epochs: int, rows: int) -> dict:
    """fintune's bag-of-words (char n-grams) or the Qwen head, task multi_label."""
    import pandas as pd

    from fintune import api
    from fintune.config import validate_config

    train_path, held_path = finnl_splits(data, out)
    if row == "finnl_qwen_head_lora":
        sample = pd.read_json(train_path, lines=True).sample(frac=1.0, random_state=0).head(rows)
        train_path = out / f"finnl_train_{rows}.jsonl"
        sample.to_json(train_path, orient="records", lines=True, force_ascii=False)
    cfg: dict = {"output_dir": str(runs / row), "seed": 42, "task": "multi_label",
                 "data": {"train": str(train_path), "test": str(held_path), "text_column": "text",
                          "label_column": "labels", "label_names": CATEGORIES,
                          "split": {"test_size": 0.0, "validation_size": 0.1}},
                 "train": {"epochs": epochs, "checkpoint_every": 0}}
    FINNL_MODELS[row.removeprefix("finnl_")](cfg)
    result = api.train(validate_config(cfg), overwrite=True, show_progress=False)
    test, training = result.metrics["test"], result.metrics["training"]
    return {**{k: test[k] for k in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy")},
            "train_rows": training["train_rows"], "validation_rows": test["n"],
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "unknown_token_share": unknown_share(result.run_dir), "ece": test.get("ece"),
            "thresholds": {name: s["threshold"] for name, s in test["per_label"].items()}}


# ---------------------------------------------------------------- FinRE


def finre_splits(data: Path, out: Path) -> tuple[Path, Path]:
    """train.csv and held-out valid.csv: sentence, head, tail, label, and the marked text."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from fintune.data.relations import mark_entities

    rows = json.loads((data / "finre_train.json").read_text(encoding="utf-8"))
    frame = pd.DataFrame(rows, columns=["head", "tail", "label", "text"])
    frame["marked"] = [mark_entities(t, h, e) for t, h, e in zip(frame["text"], frame["head"], frame["tail"])]
    sentences = frame["text"].drop_duplicates()
    train_s, held_s = train_test_split(sentences, test_size=0.15, random_state=0)
    train = frame[frame["text"].isin(set(train_s))]
    held = frame[frame["text"].isin(set(held_s))].drop_duplicates(["text", "head", "tail"])
    paths = out / "finre_train.csv", out / "finre_valid.csv"
    train.to_csv(paths[0], index=False)
    held.to_csv(paths[1], index=False)
    return paths


def relation_scores(y: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    real = sorted(set(y) - {"unknown"})
    return {"micro_f1": float(f1_score(y, pred, labels=real, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y, pred, labels=real, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(y, pred))}


def run_finre_tfidf(data: Path, out: Path) -> dict:
    """Character 1-3-gram TF-IDF of the marked sentence + logistic regression, C by 5-fold CV
    (grouped by sentence) on micro F1 without `unknown` (the grid fintune's row searches; class
    weights are not searched: 44 classes make each fit minutes long on this CPU)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline

    train_path, held_path = finre_splits(data, out)
    train, held = pd.read_csv(train_path), pd.read_csv(held_path)
    real = sorted(set(train["label"]) - {"unknown"})
    scorer = make_scorer(f1_score, labels=real, average="micro", zero_division=0)
    pipe = Pipeline([("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)),
                     ("clf", LogisticRegression(max_iter=3000))])
    search = GridSearchCV(pipe, {"clf__C": [3, 10, 30]}, scoring=scorer, cv=GroupKFold(5), n_jobs=1)
    started = time.perf_counter()
    search.fit(train["marked"], train["label"], groups=train["text"])
    seconds = time.perf_counter() - started
    return {**relation_scores(held["label"].tolist(), search.predict(held["marked"]).tolist()),
            "train_rows": int(len(train)), "validation_rows": int(len(held)), "train_seconds": round(seconds, 1),
            "best_c": search.best_params_["clf__C"]}


def run_finre_fintune(row: str, data: Path, out: Path, runs: Path, epochs: int, rows: int) -> dict:
    """fintune, task relation, data.entity_columns [head, tail]: bag of characters or the Qwen head."""
    import pandas as pd

    from fintune import api
    from fintune.config import validate_config

    train_path, held_path = finre_splits(data, out)
    if row == "finre_qwen_head_lora":
        sample = pd.read_csv(train_path).sample(frac=1.0, random_state=0).head(rows)
        train_path = out / f"finre_train_{rows}.csv"
        sample.to_csv(train_path, index=False)
    cfg: dict = {"output_dir": str(runs / row), "seed": 42, "task": "relation",
                 "data": {"train": str(train_path), "test": str(held_path), "text_column": "text",
                          "entity_columns": ["head", "tail"], "label_column": "label",
                          "clean": {"drop_duplicates": False, "drop_conflicts": False},
                          "split": {"test_size": 0.0, "validation_size": 0.1}},
                 "train": {"epochs": epochs, "checkpoint_every": 0}}
    FINRE_MODELS[row.removeprefix("finre_")](cfg)
    result = api.train(validate_config(cfg), overwrite=True, show_progress=False)
    from fintune.predictors import FintuneModel

    held = pd.read_csv(held_path)
    # Scored here as the baseline is (its first label per item); fintune's own test metrics agree.
    pred = list(FintuneModel.load(result.run_dir).predict(held))
    training = result.metrics["training"]
    return {**relation_scores(held["label"].tolist(), pred), "fintune_micro_f1": result.metrics["test"]["micro_f1"],
            "train_rows": training["train_rows"], "validation_rows": int(len(held)),
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "unknown_token_share": unknown_share(result.run_dir)}
