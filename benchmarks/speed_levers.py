"""Training-step speed levers for the default encoder on TFNS tweets (issue 19).

One process per lever, each timing the same number of optimizer steps of MiniLM on the same
tweets (URLs replaced, 64-token cap, length-grouped batches as fintune builds them), in the
precision fintune picks on this machine. What each lever changes:

  baseline         fintune's loop as it is: AdamW (PyTorch's default implementation on CPU),
                   batches of 32 rows, torch's default thread count
  adamw_foreach    AdamW(foreach=True): one multi-tensor kernel per step
  adamw_fused      AdamW(fused=True): the fused CPU kernel
  compile          torch.compile(model, dynamic=True); compile seconds reported apart
  threads_1        torch.set_num_threads(1)
  token_budget     batches filled to a budget of padded tokens (32 x the mean padded length)
                   instead of 32 rows: more rows when tweets are short, fewer when long
  packing          train.packing: the 32 rows of each batch packed into sequences of up to 64
                   tokens, attention kept inside each row (fintune.data.packing)
  packing_fused    packing with fused AdamW, as fintune's loop runs (train.packing: auto)

    python benchmarks/speed_levers.py [--rows baseline,adamw_fused] [--steps 80]

Writes benchmarks/results/speed_levers.json keyed by lever: samples_per_s, real_tokens_per_s,
speedup (over baseline), seconds, and for compile the compile seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import emit, print_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "speed_levers.json"
LEVERS = ["baseline", "adamw_foreach", "adamw_fused", "compile", "threads_1", "token_budget", "packing",
          "packing_fused"]
WARMUP = 5


def token_budget_batches(lengths, budget: int, seed: int) -> list:
    """Length-sorted megabatches cut where rows x longest would pass ``budget`` tokens."""
    import numpy as np

    from fintune.data.batching import MEGABATCH

    rng = np.random.default_rng(seed)
    order, lengths = rng.permutation(len(lengths)), np.asarray(lengths)
    batches, span = [], 32 * MEGABATCH
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        current: list[int] = []
        for i in chunk:
            if current and (len(current) + 1) * lengths[current[0]] > budget:
                batches.append(np.asarray(current))
                current = []
            current.append(int(i))
        if current:
            batches.append(np.asarray(current))
    return [batches[i] for i in rng.permutation(len(batches))]


def child(lever: str, steps: int) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fintune.config import CleanConfig
    from fintune.data.batching import epoch_batches
    from fintune.data.clean import clean_text
    from fintune.data.packing import pack
    from fintune.models.packing import PackedForward, packed_head
    from fintune.models.backbones import resolve_backbone
    from fintune.models.inference import resolve_precision

    torch.manual_seed(0)
    if lever == "threads_1":
        torch.set_num_threads(1)
    path = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    frame = pd.read_csv(DATA / "sent_train.csv")
    clean = CleanConfig(replace_urls=True)
    texts = [clean_text(t, clean) for t in frame["text"]]
    ids = tokenizer(texts, truncation=True, max_length=64)["input_ids"]
    lengths = [len(x) for x in ids]
    labels = torch.tensor(frame["label"].to_numpy())
    if lever == "token_budget":
        grouped = epoch_batches(lengths, 32, 42, 0, True, None)
        mean_padded = float(np.mean([max(lengths[i] for i in b) for b in grouped]))
        batches = token_budget_batches(lengths, int(32 * mean_padded), 42)
    else:
        batches = epoch_batches(lengths, 32, 42, 0, True, None)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model.train()
    optim_kwargs = {"adamw_foreach": {"foreach": True}, "adamw_fused": {"fused": True},
                    "packing_fused": {"fused": True}}.get(lever, {})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **optim_kwargs)
    forward = model
    compile_seconds = None
    if lever == "compile":
        forward = torch.compile(model, dynamic=True)
    dtype = resolve_precision("auto", torch.device("cpu"))

    head = packed_head(model) if lever.startswith("packing") else None
    packed = PackedForward(model, head) if head is not None else None

    def inputs(index) -> dict:
        if head is not None:
            return pack([ids[i] for i in index], 64, tokenizer.pad_token_id,
                        position_offset=head.position_offset(model.config))
        width = max(lengths[i] for i in index)
        input_ids = torch.full((len(index), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            input_ids[row, :lengths[i]] = torch.tensor(ids[i])
            mask[row, :lengths[i]] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def step(index) -> None:
        batch = inputs(index)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = (packed or forward)(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for index in batches[:WARMUP]:
        step(index)
    if lever == "compile":
        compile_seconds = round(time.perf_counter() - started, 1)
    timed = batches[WARMUP:WARMUP + steps]
    started = time.perf_counter()
    for index in timed:
        step(index)
    seconds = time.perf_counter() - started
    rows = sum(len(b) for b in timed)
    tokens = sum(lengths[i] for b in timed for i in b)
    return {"samples_per_s": round(rows / seconds, 1), "real_tokens_per_s": round(tokens / seconds, 1),
            "seconds": round(seconds, 1), "steps": len(timed), "rows": rows, "threads": torch.get_num_threads(),
            "precision": "bf16" if dtype is not None else "fp32", "compile_seconds": compile_seconds}


def main() -> None:
    import subprocess
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(LEVERS))
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(child(args.child, args.steps))
        return
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    for lever in args.rows.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", lever, "--steps", str(args.steps)],
                              stdout=subprocess.PIPE, text=True, check=True)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        results[lever] = json.loads(line[len("RESULT "):])
        base = results.get("baseline", {}).get("samples_per_s")
        for row in results.values():
            row["speedup"] = round(row["samples_per_s"] / base, 3) if base else None
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, ["samples_per_s", "real_tokens_per_s", "speedup", "seconds", "compile_seconds"], "lever")


if __name__ == "__main__":
    main()
