"""Every tuning strategy on Twitter Financial News sentiment, plus a distilled student.

One row per strategy (full, freeze, gradual, lora, prompt, ptuning) and one for a student
with the first 2 layers of the default model, distilled from the `full` row. Every row
trains the default backbone for the same number of epochs with the same batch size and
seed; the learning rate is the one each method is usually run with (adapters and prompts
need larger ones). Each row runs in its own process, so peak RSS is its own. Inference
samples/s is `FintuneModel.outputs` in fp32 over the 2,388 validation tweets, batch 64,
tokenization included.

    python benchmarks/strategies_tfns.py                 # all rows
    python benchmarks/strategies_tfns.py --rows lora,full

Writes benchmarks/results/strategies_tfns.json keyed by row.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import emit, peak_rss_mb, print_table, run_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "strategies_tfns.json"
RUNS = ROOT / "runs" / "bench_strategies"
LABELS = ["Bearish", "Bullish", "Neutral"]
KEYS = ["weighted_f1", "macro_f1", "trainable_params", "train_seconds", "peak_rss_mb",
        "model_size_mb", "inference_samples_per_s"]

STRATEGIES = {
    "full": ({"name": "full"}, 1e-4),
    "freeze": ({"name": "freeze", "trainable_layers": 2}, 3e-4),
    "gradual": ({"name": "gradual"}, 1e-4),
    "lora": ({"name": "lora", "r": 8, "alpha": 16}, 1e-3),
    "prompt": ({"name": "prompt", "num_virtual_tokens": 20, "init": "text",
                "init_text": "Classify the sentiment of this financial tweet:"}, 3e-3),
    "ptuning": ({"name": "ptuning", "num_virtual_tokens": 20, "encoder_hidden_size": 128}, 3e-3),
}
STUDENT_LAYERS = 2


def config(row: str, epochs: int) -> dict:
    strategy, lr = STRATEGIES.get(row, STRATEGIES["full"])
    return {
        "output_dir": str(RUNS / row), "seed": 42,
        "data": {"train": str(DATA / "sent_train.csv"), "validation": str(DATA / "sent_valid.csv"),
                 "text_column": "text", "label_map": dict(enumerate(LABELS)),
                 "clean": {"replace_urls": True}, "split": {"test_size": 0.0}},
        "model": {"backbone": "minilm", "max_length": 64},
        "strategy": strategy,
        "train": {"epochs": epochs, "batch_size": 32, "lr": lr, "checkpoint_every": 0,
                  "early_stopping": {"metric": "weighted_f1", "patience": 2}},
    }


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def inference_speed(run_dir: Path, texts: list[str]) -> float:
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(run_dir)
    model.outputs(texts[:64])  # warm up
    start = time.perf_counter()
    model.outputs(texts, batch_size=64)
    return len(texts) / (time.perf_counter() - start)


def child(row: str, epochs: int) -> dict:
    import pandas as pd

    from fintune import api
    from fintune.config import validate_config
    from fintune.workflows.distill import distill

    if row == "distilled":
        teacher = RUNS / "full"
        if not (teacher / "metrics.json").exists():
            raise SystemExit("the distilled row needs the full row first")
        result = distill(teacher, "minilm", num_layers=STUDENT_LAYERS, output_dir=str(RUNS / row),
                         overrides=[f"train.epochs={epochs}", "train.lr=2e-4"], overwrite=True,
                         show_progress=False)
    else:
        result = api.train(validate_config(config(row, epochs)), overwrite=True, show_progress=False)
    # Score the whole validation file (training drops tweets that repeat a training tweet).
    val = api.evaluate(result.run_dir, DATA / "sent_valid.csv")
    texts = pd.read_csv(DATA / "sent_valid.csv").text.tolist()
    training = result.metrics["training"]
    return {
        "weighted_f1": val["weighted_f1"], "macro_f1": val["macro_f1"], "accuracy": val["accuracy"],
        "trainable_params": training["trainable_params"], "total_params": training["total_params"],
        "trainable_percent": round(100 * training["trainable_params"] / training["total_params"], 3),
        "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
        "peak_rss_mb": peak_rss_mb(),
        "model_size_mb": round(folder_mb(result.model_dir), 2),
        "inference_samples_per_s": round(inference_speed(result.run_dir, texts), 1),
        "epochs_run": round(training["global_step"] / -(-training["train_rows"] // 32), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", default=",".join([*STRATEGIES, "distilled"]))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(child(args.child, args.epochs))
        return
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here (the benchmark reads the data at run time)")
        return
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT)
    print_table(results, KEYS, "row", 24)
    if {"full", "lora"} <= results.keys():
        full, lora = results["full"], results["lora"]
        print(f"lora - full weighted F1: {100 * (lora['weighted_f1'] - full['weighted_f1']):+.2f} points, "
              f"lora trainable {lora['trainable_percent']:.2f}% (targets: >= -1 point, <= 2%)")
    if {"full", "gradual"} <= results.keys():
        print(f"gradual - full weighted F1: {100 * (results['gradual']['weighted_f1'] - results['full']['weighted_f1']):+.2f} points (target >= 0)")
    if {"full", "distilled"} <= results.keys():
        s, t = results["distilled"], results["full"]
        print(f"student/teacher inference speed: {s['inference_samples_per_s'] / t['inference_samples_per_s']:.2f}x, "
              f"weighted F1 {100 * (s['weighted_f1'] - t['weighted_f1']):+.2f} points (targets: >= 2x, >= -2 points)")


if __name__ == "__main__":
    main()
