"""A causal LM tuned by instruction on tweet sentiment, in 1 and 2 processes.

By default the model is a small Llama built in-process (4 layers, hidden 128, a word-level
vocabulary of the 8,000 most frequent training words; random weights, nothing downloaded),
trained fully for a bounded number of steps with the FinGPT prompt, two ways:

- ``1_process``, ``2_processes``: classification by instruction, the label words scored as
  answers (``fintune train --nproc 2`` with the same global batch);
- ``instruct_1_process``, ``instruct_2_processes``: instruction tuning (task generation) on
  the tweets written as FinGPT instruction/input/output records, the answers generated
  greedily and scored as FinGPT scores them (weighted F1 of the answers as classes, an
  answer naming no class counting as wrong), plus exact match.

Each row: weighted F1 on the validation tweets, training tokens/s and samples/s.

The same script takes a real model and a GPU where there is one:

    python benchmarks/causal_lm.py                                   # tiny in-process Llama, CPU
    python benchmarks/causal_lm.py --backbone Qwen/Qwen2.5-0.5B --strategy lora --steps 300

Writes benchmarks/results/causal_lm.json keyed by row.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from common import print_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "causal_lm.json"
RUNS = ROOT / "runs" / "bench_causal"
PROMPT = "Instruction: What is the sentiment of this news? Please choose an answer from {choices}.\nInput: {text}\nAnswer:"
# FinGPT's sentiment instruction; the records carry it, the generation prompt places it.
INSTRUCTION = "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
ANSWERS = {0: "negative", 1: "positive", 2: "neutral"}
KEYS = ["weighted_f1", "accuracy", "exact_match", "train_tokens_per_s", "train_samples_per_s", "steps", "processes"]


def tiny_llama(folder: Path) -> Path:
    """A 4-layer Llama with the training tweets' most frequent words as its vocabulary."""
    import pandas as pd
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    counts = collections.Counter()
    for text in pd.read_csv(DATA / "sent_train.csv")["text"].astype(str):
        counts.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    words = [w for w, _ in counts.most_common(8000)]
    words += [w for w in re.findall(r"\w+|[^\w\s]", PROMPT.lower() + INSTRUCTION.lower() + " negative neutral positive")
              if w not in words]
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<s>", "</s>", *dict.fromkeys(words)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                        bos_token="<s>", eos_token="</s>")
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def instruction_records(split: str) -> Path:
    """The tweets as FinGPT instruction/input/output records (JSONL, under runs/, never committed)."""
    import pandas as pd

    frame = pd.read_csv(DATA / f"sent_{split}.csv")
    path = RUNS / f"instruct_{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = pd.DataFrame({"instruction": INSTRUCTION, "input": frame["text"], "output": frame["label"].map(ANSWERS)})
    records.to_json(path, orient="records", lines=True)
    return path


def config(row: str, backbone: str, strategy: str, steps: int) -> Path:
    if row.startswith("instruct"):
        raw = classification_config(row, backbone, strategy, steps)
        raw["task"] = "generation"
        raw["data"] = {"train": str(instruction_records("train")), "validation": str(instruction_records("valid")),
                       "instruction_column": "instruction", "text_column": "input", "label_column": "output",
                       "clean": {"replace_urls": True}, "split": {"test_size": 0.0}}
        raw["model"] = {"backbone": backbone, "kind": "causal", "max_length": 96, "max_new_tokens": 4}
    else:
        raw = classification_config(row, backbone, strategy, steps)
    path = RUNS / f"{row}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def classification_config(row: str, backbone: str, strategy: str, steps: int) -> dict:
    return {
        "output_dir": str(RUNS / row), "seed": 42,
        "data": {"train": str(DATA / "sent_train.csv"), "validation": str(DATA / "sent_valid.csv"),
                 "text_column": "text", "label_map": {0: "Bearish", 1: "Bullish", 2: "Neutral"},
                 "clean": {"replace_urls": True}, "split": {"test_size": 0.0}},
        "model": {"backbone": backbone, "kind": "causal", "max_length": 96, "prompt": PROMPT,
                  "label_words": {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}},
        "strategy": {"name": strategy},
        "train": {"epochs": 10, "max_steps": steps, "batch_size": 32, "lr": 1e-3 if strategy == "full" else 2e-4,
                  "checkpoint_every": 0, "early_stopping": None, "eval_every": steps, "warmup_fraction": 0.05},
    }


def run(row: str, path: Path, nproc: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    subprocess.run([sys.executable, "-m", "fintune", "train", str(path), "--overwrite", "--no-progress",
                    "--nproc", str(nproc)], env=env, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((RUNS / row / "metrics.json").read_text())
    training, validation = metrics["training"], metrics["validation"]
    tokens = mean_tokens(RUNS / row)
    return {"weighted_f1": validation["weighted_f1"], "accuracy": validation["accuracy"],
            "exact_match": validation.get("exact_match"), "unmatched": validation.get("unmatched"),
            "train_samples_per_s": training["train_samples_per_s"],
            "train_tokens_per_s": round(training["train_samples_per_s"] * tokens, 1),
            "mean_tokens_per_row": round(tokens, 1), "steps": training["global_step"],
            "processes": training.get("processes", 1), "ranks_in_sync": training.get("ranks_in_sync")}


def mean_tokens(run_dir: Path) -> float:
    """Prompt plus answer tokens per training row, as the model saw them."""
    import numpy as np

    from fintune.config import load_config
    from fintune.data import prepare_data
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    train = prepare_data(cfg.data, cfg.task, seed=42).train
    rows = train.take(np.arange(min(2000, len(train))))
    if cfg.task == "generation":  # the answer and end-of-sequence are in the ids
        return float(np.mean([len(ids) for ids in model.prompt.with_answers().encode(rows, model.max_length)["input_ids"]]))
    ids = model.prompt.encode(rows, model.max_length)["input_ids"]
    return sum(map(len, ids)) / len(ids) + 1  # + the answer token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", help="a causal LM id or path (default: the tiny in-process Llama)")
    parser.add_argument("--strategy", default="full")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--nproc", default="1,2", help="process counts to run")
    parser.add_argument("--tasks", default="classification,generation",
                        help="classification (label words scored), generation (instruction tuning), or both")
    args = parser.parse_args()
    backbone = args.backbone or str(tiny_llama(RUNS / "tiny_llama"))
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    for task, nproc in ((t, n) for t in args.tasks.split(",") for n in map(int, args.nproc.split(","))):
        row = ("instruct_" if task == "generation" else "") + f"{nproc}_process" + ("es" if nproc > 1 else "")
        results[row] = {**run(row, config(row, backbone, args.strategy, args.steps), nproc),
                        "backbone": args.backbone or "tiny in-process Llama (4 layers, hidden 128)",
                        "strategy": args.strategy}
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, KEYS, "row", width=10)


if __name__ == "__main__":
    main()
