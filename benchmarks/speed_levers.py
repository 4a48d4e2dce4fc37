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
  token_budget     train.batch_tokens: batches of at most 32 x the mean real length tokens
                   instead of 32 rows (more rows when tweets are short, fewer when long), fused AdamW
  packing          train.packing: the 32 rows of each batch packed into sequences of up to 64
                   tokens, attention kept inside each row (fintune.data.packing)
  packing_fused    packing with fused AdamW, as fintune's loop runs (train.packing: auto)
  random_batches   32 rows in random order (train.group_by_length: false), padded to the longest
                   of each batch, fused AdamW
  random_packed    the same random batches, packed (train.group_by_length: false, packing: true)
  scoring_padded   not training: scoring all 2,388 validation tweets (eval batches of 128,
                   sorted by length, as `fintune predict` reads them), bf16
  scoring_packed   the same rows packed into sequences of up to 64 tokens

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
          "packing_fused", "random_batches", "random_packed", "scoring_padded", "scoring_packed"]
WARMUP = 5


def scoring(lever: str) -> dict:
    """Inference over the validation tweets in length-sorted batches of 128, padded or packed."""
    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fintune.config import CleanConfig
    from fintune.data.batching import collate, eval_batches
    from fintune.data.clean import clean_text
    from fintune.data.packing import pack
    from fintune.models.backbones import resolve_backbone
    from fintune.models.inference import resolve_precision
    from fintune.models.packing import PackedForward, packed_head

    path = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    frame = pd.read_csv(DATA / "sent_valid.csv")
    ids = tokenizer([clean_text(t, CleanConfig(replace_urls=True)) for t in frame["text"]], truncation=True,
                    max_length=64)["input_ids"]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).eval()
    head = packed_head(model)
    packed = PackedForward(model, head)
    dtype = resolve_precision("auto", torch.device("cpu"))
    batches = eval_batches([len(x) for x in ids], 128)

    def run() -> float:
        started = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            for index in batches:
                if lever == "scoring_packed":
                    batch = pack([ids[i] for i in index], 64, tokenizer.pad_token_id,
                                 position_offset=head.position_offset(model.config))
                    packed(**batch)
                else:
                    model(**collate({"input_ids": ids}, index, tokenizer.pad_token_id))
        return time.perf_counter() - started

    run()  # warm-up
    seconds = min(run() for _ in range(3))
    return {"samples_per_s": round(len(ids) / seconds, 1),
            "real_tokens_per_s": round(sum(map(len, ids)) / seconds, 1), "seconds": round(seconds, 2),
            "rows": len(ids), "threads": torch.get_num_threads(), "precision": "bf16" if dtype is not None else "fp32"}


def child(lever: str, steps: int) -> dict:
    if lever.startswith("scoring"):
        return scoring(lever)
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
        # train.batch_tokens: length-grouped rows cut at 32 x the mean real length.
        batches = epoch_batches(lengths, 32, 42, 0, True, None, batch_tokens=int(32 * np.mean(lengths)))
    else:
        batches = epoch_batches(lengths, 32, 42, 0, not lever.startswith("random"), None)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model.train()
    optim_kwargs = {"adamw_foreach": {"foreach": True}, "adamw_fused": {"fused": True}, "packing_fused": {"fused": True},
                    "random_batches": {"fused": True}, "token_budget": {"fused": True}, "random_packed": {"fused": True}}.get(lever, {})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **optim_kwargs)
    forward = model
    compile_seconds = None
    if lever == "compile":
        forward = torch.compile(model, dynamic=True)
    dtype = resolve_precision("auto", torch.device("cpu"))

    head = packed_head(model) if lever in ("packing", "packing_fused", "random_packed") else None
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
        scored = results.get("scoring_padded", {}).get("samples_per_s")
        for name, row in results.items():
            # Scoring rows against padded scoring, training rows against the training baseline.
            against = scored if name.startswith("scoring") else base
            row["speedup"] = round(row["samples_per_s"] / against, 3) if against else None
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, ["samples_per_s", "real_tokens_per_s", "speedup", "seconds", "compile_seconds"], "lever")


if __name__ == "__main__":
    main()
