"""Instruction tuning with packed sequences: fintune against TRL's SFTTrainer.

SmolLM2-135M-Instruct (`smollm2`, the catalogue's small causal LM) is fully fine-tuned for one
epoch on the first 1,000 TFNS tweets of a fixed shuffle, each a chat: a short system prompt,
the question and the tweet, and the answer word (negative / neutral / positive); the loss is
on the answer only. Both read the model's chat template and train in the precision fintune
picks on the machine (bf16 autocast where native), learning rate 5e-5, linear decay, 10%
warmup, max length 128, seed 42. One process per row, one at a time on this machine.

Rows:
  fintune_packed   train.packing: true: 16 records a step, packed into sequences of up to 128
                   tokens (position ids restart per record)
  fintune_padded   train.packing: false: 16 records a step, each padded to the longest
  trl_packed       SFTTrainer(packing=True): best-fit-decreasing packing into sequences of 128
                   tokens, padding-free (position ids), completion-only loss; 9 packed
                   sequences a step (about the tokens of fintune's 16 records)
  trl_padded       SFTTrainer without packing, 16 records a step

    python benchmarks/packing_sft.py [--rows fintune_packed,trl_packed] [--records 1000]

Writes benchmarks/results/packing_sft.json keyed by row: real_tokens_per_s (answer and prompt
tokens, no pads, over the training seconds), train_seconds, records, steps, final_loss (the
mean training loss over the last 20% of the steps: each system's own answer-token loss).
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
RESULT = ROOT / "benchmarks" / "results" / "packing_sft.json"
ROWS = ["fintune_packed", "fintune_padded", "trl_packed", "trl_padded"]
KEYS = ["real_tokens_per_s", "train_seconds", "records", "steps", "final_loss"]
WORDS = ["negative", "positive", "neutral"]
SYSTEM = "You are a financial analyst."
QUESTION = "What is the sentiment of this tweet? Answer with one word: negative, neutral or positive."
LR, BATCH, MAX_LENGTH, SEED = 5e-5, 16, 128, 42


def records(n: int) -> list[dict]:
    import pandas as pd

    frame = pd.read_csv(DATA / "sent_train.csv").sample(frac=1.0, random_state=0).head(n)
    return [{"instruction": QUESTION, "input": t, "output": WORDS[int(y)]} for t, y in zip(frame["text"],
                                                                                          frame["label"])]


def final_loss(losses: list[float]) -> float:
    tail = losses[-max(1, len(losses) // 5):]
    return round(sum(tail) / len(tail), 4)


def run_fintune(row: str, rows: list[dict], out: Path) -> dict:
    from fintune import api
    from fintune.config import validate_config
    from fintune.catalogue import fetch

    fetch("smollm2")
    path = out / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = validate_config({
        "output_dir": str(out / "run"), "seed": SEED, "task": "generation",
        "data": {"train": str(path), "text_column": "input", "label_column": "output",
                 "instruction_column": "instruction", "split": {"validation_size": 0.05, "test_size": 0.0},
                 "clean": {"drop_duplicates": False, "drop_conflicts": False}},
        "model": {"backbone": "smollm2", "kind": "causal", "max_length": MAX_LENGTH, "max_new_tokens": 2,
                  "system_prompt": SYSTEM},
        "strategy": {"name": "full"},
        "train": {"epochs": 1, "batch_size": BATCH, "lr": LR, "weight_decay": 0.0, "warmup_fraction": 0.1,
                  "checkpoint_every": 0, "early_stopping": None, "packing": row == "fintune_packed"},
    })
    result = api.train(cfg, overwrite=True, show_progress=False)
    training = result.metrics["training"]
    steps = [json.loads(line) for line in (result.run_dir / "steps.jsonl").read_text().splitlines()]
    return {"real_tokens_per_s": training["train_tokens_per_s"], "train_seconds": training["train_seconds"],
            "records": training["train_rows"], "packed": training["packed"],
            "steps": len(steps), "final_loss": final_loss([s["loss"] for s in steps]),
            "precision": training["precision"]}


def run_trl(row: str, rows: list[dict], out: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from fintune.catalogue import fetch
    from fintune.models.inference import resolve_precision

    folder = fetch("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": [{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}"}],
                               "completion": [{"role": "assistant", "content": r["output"]}]} for r in rows])
    packed = row == "trl_packed"
    bf16 = resolve_precision("auto", torch.device("cpu")) is not None
    args = SFTConfig(output_dir=str(out / "trl"), num_train_epochs=1, learning_rate=LR, lr_scheduler_type="linear",
                     warmup_steps=0.1, weight_decay=0.0, per_device_train_batch_size=9 if packed else BATCH,
                     max_length=MAX_LENGTH, packing=packed, bf16=bf16, use_cpu=True, seed=SEED, logging_steps=1,
                     save_strategy="no", report_to=[], dataloader_num_workers=0, disable_tqdm=True)
    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer's signature)
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[Losses()])
    tokens = int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return {"real_tokens_per_s": round(tokens / seconds, 1), "train_tokens": tokens, "train_seconds": round(seconds, 1),
            "records": len(rows), "steps": trainer.state.global_step, "final_loss": final_loss(losses),
            "precision": "bf16" if bf16 else "fp32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows = records(args.records)
        with tempfile.TemporaryDirectory() as tmp:
            run = run_trl if args.child.startswith("trl") else run_fintune
            emit({**run(args.child, rows, Path(tmp)), "peak_rss_mb": peak_rss_mb()})
        return
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not here (the benchmark reads the data at run time)")
        return
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT,
                       extra_args=["--records", str(args.records)])
    print_table(results, KEYS, "row")
    if {"fintune_packed", "trl_packed"} <= results.keys():
        ratio = results["fintune_packed"]["real_tokens_per_s"] / results["trl_packed"]["real_tokens_per_s"]
        print(f"tokens/s fintune packed / TRL packed: {ratio:.2f}x (target 1.3x)", file=sys.stderr)


if __name__ == "__main__":
    main()
