"""One small training config per registered predictor, on the tiny in-process models.

Used by tests/models/test_predictors.py; it imports nothing but the test helpers, so the
same configs also trained the runs whose ``fintune.json`` (format 1, before the typed
metadata) lie in tests/models/legacy/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fintune.config import readers_of
from tests.conftest import credit_frame, sentiment_frame, write_config

FEATURES = ["income", "debt_ratio", "purpose", "age"]
PROMPT = "What is the sentiment of this news? Answer with one of: {choices}.\nNews: {text}\nAnswer:"
TRAIN = {"epochs": 1, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"}


def _sentiment(tmp: Path) -> Path:
    path = tmp / "sentiment.csv"
    sentiment_frame(120).to_csv(path, index=False)
    return path


def _credit(tmp: Path) -> Path:
    path = tmp / "credit.csv"
    credit_frame(200).to_csv(path, index=False)
    return path


def text(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "text.yaml", bert, _sentiment(tmp), tmp / "text", train=TRAIN)


def text_lora(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "text_lora.yaml", bert, _sentiment(tmp), tmp / "text_lora", train=TRAIN,
                        strategy={"name": "lora", "r": 4})


def _table(tmp: Path, bert: Path, kind: str, **model: object) -> Path:
    data = _credit(tmp)
    return write_config(tmp / f"{kind}.yaml", bert, data, tmp / kind,
                        data={"train": str(data), "text_column": None, "feature_columns": FEATURES,
                              "label_column": "label", "label_names": ["good", "bad"]},
                        model={"backbone": str(bert), "max_length": 32, "kind": kind,
                               **({"head_hidden": 16} if kind in readers_of("head_hidden") else {}), **model},
                        train={**TRAIN, "early_stopping": {"metric": "roc_auc"}})


def fusion(tmp: Path, bert: Path, llama: Path) -> Path:
    return _table(tmp, bert, "fusion")


def mlp(tmp: Path, bert: Path, llama: Path) -> Path:
    return _table(tmp, bert, "mlp")


def gbm(tmp: Path, bert: Path, llama: Path) -> Path:
    return _table(tmp, bert, "gbm", gbm={"n_estimators": 30, "min_child_samples": 5})


def probe(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "probe.yaml", bert, _sentiment(tmp), tmp / "probe", model={"kind": "probe"},
                        train={**TRAIN, "epochs": 20, "lr": 0.05})


def probe_setfit(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "probe_setfit.yaml", bert, _sentiment(tmp), tmp / "probe_setfit",
                        model={"kind": "probe"}, strategy={"name": "setfit", "num_iterations": 2},
                        train={**TRAIN, "epochs": 20, "lr": 0.05})


def long_text(tmp: Path, bert: Path, llama: Path) -> Path:
    # Short texts are documents of one window here; tests/models/test_long_text.py reads long ones.
    return write_config(tmp / "long_text.yaml", bert, _sentiment(tmp), tmp / "long_text",
                        model={"backbone": str(bert), "max_length": 8, "kind": "long_text",
                               "long_text": {"stride": 4, "max_windows": 4}}, train=TRAIN)


def linear(tmp: Path, bert: Path, llama: Path) -> Path:
    return _table(tmp, bert, "linear", linear={"C": [0.1, 1.0], "folds": 3})


def ensemble(tmp: Path, bert: Path, llama: Path) -> Path:
    return _table(tmp, bert, "ensemble", ensemble={"members": ["gbm", "linear", "mlp"], "rounds": 10},
                  gbm={"n_estimators": 30, "min_child_samples": 5}, linear={"C": [0.1, 1.0], "folds": 3})


def causal(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "causal.yaml", llama, _sentiment(tmp), tmp / "causal", train=TRAIN,
                        model={"backbone": str(llama), "kind": "causal", "max_length": 48, "prompt": PROMPT})


def causal_head(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "causal_head.yaml", llama, _sentiment(tmp), tmp / "causal_head", train=TRAIN,
                        model={"backbone": str(llama), "kind": "causal", "head": "classifier", "max_length": 48},
                        strategy={"name": "lora", "r": 4})


def bow(tmp: Path, bert: Path, llama: Path) -> Path:
    return write_config(tmp / "bow.yaml", bert, _sentiment(tmp), tmp / "bow", model={"kind": "bow"},
                        train=TRAIN)


def generation(tmp: Path, bert: Path, llama: Path) -> Path:
    frame = sentiment_frame(60)
    rows = [{"instruction": "what is the sentiment of this news ?", "input": t, "output": y}
            for t, y in zip(frame["text"], frame["label"])]
    path = tmp / "instructions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return write_config(
        tmp / "generation.yaml", llama, path, tmp / "generation", task="generation",
        data={"train": str(path), "text_column": "input", "label_column": "output", "instruction_column": "instruction"},
        model={"backbone": str(llama), "kind": "causal", "max_length": 48, "max_new_tokens": 3}, train=TRAIN)


def tagger(tmp: Path, bert: Path, llama: Path) -> Path:
    from tests.tagging.conftest import tagged_sentences, write_jsonl

    data = write_jsonl(tmp / "ner.jsonl", tagged_sentences(80))
    return write_config(tmp / "tagger.yaml", bert, data, tmp / "tagger", task="token_classification",
                        data={"train": str(data), "tokens_column": "tokens", "label_column": "tags",
                              "text_column": None},
                        model={"backbone": str(bert), "max_length": 32, "crf": True, "case_features": True},
                        train={**TRAIN, "lr": 5e-3})


# predictor name -> configs that train it (a kind may have several: plain and adapter).
CASES: dict[str, list[Callable[[Path, Path, Path], Path]]] = {
    "text": [text, text_lora], "fusion": [fusion], "mlp": [mlp], "gbm": [gbm], "linear": [linear],
    "probe": [probe, probe_setfit], "long_text": [long_text],
    "ensemble": [ensemble], "causal": [causal], "causal_head": [causal_head],
    "generation": [generation], "tagger": [tagger], "bow": [bow],
}


def probe_inputs(name: str, tmp: Path) -> pd.DataFrame:
    """Rows to predict for a kind, as `fintune predict` reads them."""
    if name in ("fusion", "mlp", "gbm", "linear", "ensemble"):
        return credit_frame(40, seed=9)
    if name == "generation":
        frame = sentiment_frame(8, seed=9)
        return pd.DataFrame({"instruction": "what is the sentiment of this news ?", "input": frame["text"]})
    if name == "tagger":
        return pd.DataFrame({"text": ["acme bank beats hooli", "globex falls in stark", "nothing here"]})
    return sentiment_frame(40, seed=9)
