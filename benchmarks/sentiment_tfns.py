"""Tweet sentiment on Twitter Financial News: fintune against Hugging Face Trainer.

Both fine-tune the default backbone (all-MiniLM-L6-v2) on sent_train.csv with the same
hyperparameters (learning rate, batch size, epochs, weight decay, warmup, max length) and
are scored on sent_valid.csv. Trainer keeps its defaults otherwise (dynamic padding through
its default collator, fp32, random batches). Each system runs in its own process so peak
RSS is its own.

    python benchmarks/sentiment_tfns.py            # both systems, table + JSON
    python benchmarks/sentiment_tfns.py --epochs 1 # quicker
    python benchmarks/sentiment_tfns.py --systems fintune_fp32   # one row: fintune without bf16
    python benchmarks/sentiment_tfns.py --systems trainer_tuned  # Trainer grouped by length, bf16 where native
    python benchmarks/sentiment_tfns.py --systems fintune_packed,fintune_padded,trainer_tuned  # train.packing

Writes benchmarks/results/sentiment_tfns.json: {"fintune": {...}, "trainer": {...}}, plus
"fintune_fp32" when that row is run. Rows already in the file and not rerun are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import emit, peak_rss_mb, print_table, run_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "sentiment_tfns.json"
LABELS = ["Bearish", "Bullish", "Neutral"]
KEYS = ["accuracy", "weighted_f1", "macro_f1", "train_seconds", "train_samples_per_s", "peak_rss_mb"]


def hyperparameters(epochs: int) -> dict:
    return {"lr": 1e-4, "batch_size": 32, "epochs": epochs, "weight_decay": 0.01,
            "warmup_fraction": 0.1, "max_length": 64, "seed": 42}


def run_fintune_fp32(hp: dict, out: Path) -> dict:
    """fintune without bf16 autocast: shows what bf16 costs or saves, all else equal."""
    return run_fintune(hp, out, precision="fp32")


def run_fintune_packed(hp: dict, out: Path) -> dict:
    """fintune with train.packing: true (the default auto packs MiniLM too; this row says so)."""
    return run_fintune(hp, out, packing=True)


def run_fintune_padded(hp: dict, out: Path) -> dict:
    """fintune with train.packing: false: every batch padded to its longest row, as before."""
    return run_fintune(hp, out, packing=False)


def run_fintune(hp: dict, out: Path, precision: str = "auto", packing: bool | str = "auto") -> dict:
    from fintune import api
    from fintune.config import validate_config

    cfg = validate_config({
        "output_dir": str(out / "fintune"), "seed": hp["seed"],
        "data": {"train": str(DATA / "sent_train.csv"), "validation": str(DATA / "sent_valid.csv"),
                 "text_column": "text", "label_column": "label",
                 "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
                 "split": {"test_size": 0.0}},
        "model": {"backbone": "minilm", "max_length": hp["max_length"]},
        "strategy": {"name": "full"},
        "train": {"epochs": hp["epochs"], "batch_size": hp["batch_size"], "lr": hp["lr"],
                  "weight_decay": hp["weight_decay"], "warmup_fraction": hp["warmup_fraction"],
                  "checkpoint_every": 0, "early_stopping": None, "precision": precision, "packing": packing},
    })
    result = api.train(cfg, show_progress=sys.stderr.isatty())
    training = result.metrics["training"]
    # Training drops validation tweets that equal a training tweet once URLs are replaced
    # (leakage); score the whole file too, so both systems see the same 2,388 rows.
    val = api.evaluate(result.run_dir, DATA / "sent_valid.csv")
    return {"accuracy": val["accuracy"], "weighted_f1": val["weighted_f1"], "macro_f1": val["macro_f1"],
            "train_seconds": training["train_seconds"],
            "train_samples_per_s": training["train_samples_per_s"], "precision": training["precision"],
            "validation_rows": val["n"], "packing": packing,
            "weighted_f1_without_overlap": result.metrics["validation"]["weighted_f1"],
            "rows_without_overlap": result.metrics["validation"]["n"]}


def run_trainer_tuned(hp: dict, out: Path) -> dict:
    """Trainer with its own best settings on this machine: batches grouped by length and bf16
    where the CPU runs it natively (the precision fintune picks here), as fintune does."""
    import torch

    from fintune.models.inference import resolve_precision

    bf16 = resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
    return run_trainer(hp, out, tuned={"train_sampling_strategy": "group_by_length", "bf16": bf16, "use_cpu": True})


def run_trainer(hp: dict, out: Path, tuned: dict | None = None) -> dict:
    import numpy as np
    import pandas as pd
    from datasets import Dataset
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments, set_seed)

    from fintune.models.backbones import resolve_backbone

    set_seed(hp["seed"])
    path = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})

    def dataset(name: str) -> Dataset:
        frame = pd.read_csv(DATA / name)
        ds = Dataset.from_pandas(frame.rename(columns={"label": "labels"}))
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=hp["max_length"]),
                      batched=True, remove_columns=["text"])

    train, valid = dataset("sent_train.csv"), dataset("sent_valid.csv")
    steps = int(np.ceil(len(train) / hp["batch_size"])) * hp["epochs"]
    args = TrainingArguments(
        output_dir=str(out / "trainer"), learning_rate=hp["lr"], per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=128, num_train_epochs=hp["epochs"], weight_decay=hp["weight_decay"],
        warmup_steps=int(hp["warmup_fraction"] * steps), seed=hp["seed"], save_strategy="no",
        report_to=[], logging_steps=50, disable_tqdm=not sys.stderr.isatty(), **(tuned or {}),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    stats = trainer.train().metrics
    pred = trainer.predict(valid)
    y_pred, y_true = pred.predictions.argmax(axis=1), pred.label_ids
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted")),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
            "train_seconds": round(stats["train_runtime"], 3),
            "train_samples_per_s": round(stats["train_samples_per_second"], 3),
            "precision": "bf16" if (tuned or {}).get("bf16") else "fp32",
            "validation_rows": int(len(y_true))}


def efficiency(results: dict) -> dict:
    """Real (non-pad) tokens per second of each row, and the share of this machine's measured
    matmul peak in the row's precision that they are, by the usual count of training FLOPs:
    6 x non-embedding parameters per token, plus attention (12 x layers x hidden x tokens)."""
    import platform
    import time

    import pandas as pd
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from fintune.config import CleanConfig
    from fintune.data.clean import clean_text
    from fintune.models.backbones import resolve_backbone

    path = resolve_backbone("minilm")
    tokenizer, config = AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    clean = CleanConfig(replace_urls=True)
    texts = [clean_text(t, clean) for t in pd.read_csv(DATA / "sent_train.csv")["text"]]
    lengths = [min(len(ids), 64) for ids in tokenizer(texts)["input_ids"]]
    mean_tokens = sum(lengths) / len(lengths)
    model = AutoModel.from_pretrained(path)
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    flops_per_token = 6 * params + 12 * config.num_hidden_layers * config.hidden_size * mean_tokens

    def peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up
        started = time.perf_counter()
        for _ in range(reps):
            a @ b
        return 2 * n ** 3 * reps / (time.perf_counter() - started)

    peaks = {"bf16": peak(torch.bfloat16), "fp32": peak(torch.float32)}
    flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
             if f in Path("/proc/cpuinfo").read_text()] if Path("/proc/cpuinfo").exists() else []
    out = {"mean_real_tokens": round(mean_tokens, 2), "flops_per_token": int(flops_per_token),
           "peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()}, "cpu_flags": flags,
           "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    for name, row in results.items():
        if name == "efficiency" or "train_samples_per_s" not in row:
            continue
        tokens = row["train_samples_per_s"] * mean_tokens
        row["real_tokens_per_s"] = round(tokens, 1)
        row["peak_fraction"] = round(tokens * flops_per_token / peaks[row.get("precision", "fp32")], 3)
    return out


SYSTEMS = {"fintune": run_fintune, "fintune_fp32": run_fintune_fp32, "trainer": run_trainer,
           "trainer_tuned": run_trainer_tuned, "fintune_packed": run_fintune_packed,
           "fintune_padded": run_fintune_padded}


def child(system: str, epochs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        row = SYSTEMS[system](hyperparameters(epochs), Path(tmp))
    emit({**row, "peak_rss_mb": peak_rss_mb()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--systems", default="fintune,trainer")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here (the benchmark reads the data at run time)")
        return
    results = run_rows(__file__, args.systems.split(","), args.epochs, RESULT)
    results["efficiency"] = efficiency({k: v for k, v in results.items() if k != "efficiency"})
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table({k: v for k, v in results.items() if k != "efficiency"}, KEYS + ["real_tokens_per_s", "peak_fraction"],
                "system", 21)
    print(f"machine: {results['efficiency']}")
    if {"fintune", "trainer"} <= results.keys():
        speedup = results["fintune"]["train_samples_per_s"] / results["trainer"]["train_samples_per_s"]
        print(f"throughput ratio fintune/trainer: {speedup:.2f}x; weighted F1 target 0.88: "
              f"{'met' if results['fintune']['weighted_f1'] >= 0.88 else 'missed'}")
    if {"fintune", "trainer_tuned"} <= results.keys():
        tuned = results["trainer_tuned"]
        speedup = results["fintune"]["train_samples_per_s"] / tuned["train_samples_per_s"]
        gap = 100 * (results["fintune"]["weighted_f1"] - tuned["weighted_f1"])
        print(f"throughput ratio fintune/trainer_tuned ({tuned['precision']}): {speedup:.2f}x (target 1.5x), "
              f"weighted F1 {gap:+.2f} points (target within 0.3)")


if __name__ == "__main__":
    main()
