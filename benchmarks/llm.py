"""Large models on tweet sentiment (TFNS): Qwen2.5-0.5B-Instruct (`qwen0.5b`, dequantized from
4 bits) as a zero-shot label-word classifier with its chat template, with a classification
head (LoRA), instruction-tuned (LoRA, answers scored as classes) and the same + DPO; SmolLM2
with its chat template; MPNet and MiniLM for reference (read from text_models.json, where
they were measured with their own best settings).

The head row scores all 2,388 validation tweets and all of the shift sets (SemEval-2017
headlines, FiQA-2018 headlines and posts) in fp32. Prompted rows (label words, instruction
tuning, DPO) read several times more tokens per tweet and generate: on this project's 2-core
CPU they are scored on a fixed sample (``--eval-rows``, default 400 validation tweets and 200
rows of each shift set) in bf16; ``validation_rows`` and ``shift_rows_*`` say how many. Rows
that train on a subset say how many in ``train_rows`` (a fixed shuffle of sent_train.csv): a
0.5B LM trains at 2-8 rows/s here, depending on prompt length and what else runs.

    python benchmarks/llm.py --rows qwen_head_lora
    python benchmarks/llm.py --rows qwen_instruct_lora,qwen_instruct_dpo,qwen_zero_shot
    python benchmarks/llm.py --rows qwen_instruct_lora --train-rows 9543 --eval-rows 0   # on a GPU

Writes benchmarks/results/llm.json, one entry per row: weighted_f1, accuracy, macro_f1,
train_seconds, train_samples_per_s, train_rows, shift_weighted_f1_*.
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
RESULT = ROOT / "benchmarks" / "results" / "llm.json"
REFERENCE = ROOT / "benchmarks" / "results" / "text_models.json"
RUNS = ROOT / "runs" / "bench_llm"
LABELS = ["Bearish", "Bullish", "Neutral"]
WORDS = {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}
INSTRUCTION = "What is the sentiment of this tweet? Please choose an answer from {negative/neutral/positive}."
KEYS = ["weighted_f1", "accuracy", "macro_f1", "validation_rows", "train_rows", "train_seconds", "train_samples_per_s",
        "shift_weighted_f1_semeval_headlines", "shift_weighted_f1_fiqa_headlines", "shift_weighted_f1_fiqa_posts"]
LORA = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.05}
SHIFT_PRECISION = "auto"  # the 2,300 shift rows in bf16 where native: a 0.5B LM in fp32 takes an hour here

# Per row: backbone, how it reads the task, strategy (None: zero-shot, train.epochs 0), learning
# rate, and the training rows it is limited to on this CPU (None: all 9,543, or --train-rows).
SFT = "qwen_instruct_lora"
ROWS = {
    "qwen_head_lora": ("qwen0.5b", "head", LORA, 1e-4, None),
    # Its second epoch: a fresh LoRA (B = 0, so it starts exactly where epoch one ended) on the
    # first row's model with its adapter and head merged, at half the learning rate, decaying
    # to 0 as the second half of a 2-epoch schedule would. A 2-epoch run from scratch does not
    # fit a session on this CPU; this one resumes from the finished first epoch instead.
    "qwen_head_lora_epoch2": ("runs/bench_llm/qwen_head_lora/merged", "head", LORA, 5e-5, None),
    "qwen_instruct_lora": ("qwen0.5b", "instruct", {**LORA, "merge": True}, 2e-4, 600),
    # The same on 2.5x the tweets (the 600 above among them): does more SFT data close the gap
    # to the 0.85 target? Its own folder, so the DPO row keeps the SFT start it was measured on.
    "qwen_instruct_lora_1500": ("qwen0.5b", "instruct", {**LORA, "merge": True}, 2e-4, 1500),
    # The same on 3,000 tweets (the 1,500 above among them): the next point of the curve, an
    # hour here now that packed instruction tuning projects only the answer positions.
    "qwen_instruct_lora_3000": ("qwen0.5b", "instruct", {**LORA, "merge": True}, 2e-4, 3000),
    "qwen_instruct_lora_6000": ("qwen0.5b", "instruct", {**LORA, "merge": True}, 2e-4, 6000),
    # The same on every training tweet (9,451 after cleaning), where a session's CPU allows it.
    "qwen_instruct_lora_all": ("qwen0.5b", "instruct", {**LORA, "merge": True}, 2e-4, None),
    # DPO starts from the merged SFT model above, on pairs from its first training rows: the
    # rejected answer is the SFT model's own where it is wrong, else a wrong one at random; the
    # RPO term (sft_weight) keeps the chosen answers likely. Without both, 199 random-rejection
    # pairs moved every answer to "neutral" (0.486): the random rejections are mostly
    # "positive"/"negative", since most chosen answers are "neutral".
    "qwen_instruct_dpo": (f"runs/bench_llm/{SFT}/model", "dpo",
                          {**LORA, "name": "dpo", "beta": 0.1, "sft_weight": 1.0}, 5e-5, 200),
    # The same DPO on 600 pairs from training tweets its SFT start never saw (tweets 601-1,200
    # of the shuffle): on the 200 it had trained on, the SFT model made few errors of its own
    # to reject, so most rejections were random.
    "qwen_instruct_dpo_unseen": (f"runs/bench_llm/{SFT}/model", "dpo",
                                 {**LORA, "name": "dpo", "beta": 0.1, "sft_weight": 1.0}, 5e-5, 600),
    "qwen_zero_shot": ("qwen0.5b", "label_words", None, 0.0, None),
    "smollm2_zero_shot": ("smollm2", "label_words", None, 0.0, None),
}
# Prompted rows (label words, generation) read 60-90 tokens per tweet with the chat template,
# several times the head's 25: on this CPU they are scored on a fixed sample of the validation
# tweets and of each shift set (--eval-rows; 0 for all), in bf16 where native.
EVAL_ROWS = 400
# Qwen's template adds a 20-token default system message to every prompt; a short one of our
# own keeps the prompts (and the CPU time) down. The same one in every prompted row.
SYSTEM = "You are a financial analyst."
REFERENCE_ROWS = ("mpnet_full", "minilm_full", "tfidf_logistic")
# Export rows: the instruction-tuned run written as GGUF (``fintune export --format gguf``),
# read back with transformers and its greedy answers compared with the merged model's on 32
# validation tweets (the export's own check; it refuses a file that answers differently).
GGUF_ROWS = {"qwen_instruct_gguf_f16": (SFT, "f16"), "qwen_instruct_gguf_q8_0": (SFT, "q8_0")}
GGUF_KEYS = ["prompts", "equal_answers", "same_token_ids", "max_abs_logit_diff", "size_mb", "export_seconds"]
# Rows that start from another row's finished run, merged (``fintune export --format hf``),
# and the seed each trains with: the split comes from the TFNS files, not the seed, so a new
# seed only reshuffles the batches, as a real second epoch does.
CONTINUES = {"qwen_head_lora_epoch2": ("qwen_head_lora", 43)}
# Rows that skip the first N tweets of the fixed shuffle: those their start trained on.
SKIP = {"qwen_instruct_dpo_unseen": ROWS[SFT][4]}


def _data(train: Path, valid: Path) -> dict:
    return {"train": str(train), "validation": str(valid), "text_column": "text",
            "label_column": "label", "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
            "split": {"test_size": 0.0}}


def _instructions(src: Path, out: Path, rejected: bool = False) -> Path:
    """TFNS (labels 0-2) or a shift file (label names) as instruction, input, answer word; with
    ``rejected`` also a wrong answer word, drawn at random (seeded) from the other two."""
    import random

    import pandas as pd

    frame = pd.read_csv(src)
    rng = random.Random(0)
    rows = []
    for t, y in zip(frame["text"], frame["label"]):
        right = WORDS[y if isinstance(y, str) else LABELS[int(y)]]
        row = {"instruction": INSTRUCTION, "input": t, "output": right}
        if rejected:
            row["rejected"] = rng.choice(sorted(set(WORDS.values()) - {right}))
        rows.append(row)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def _sft_rejections(pairs: Path, sft_run: Path, out: Path) -> int:
    """Rewrite ``pairs``' rejected answers: the SFT model's own answer where it is a wrong label
    word (on-policy errors), the random wrong one elsewhere. Training rows only. Returns how
    many rejections came from the model."""
    import pandas as pd

    from fintune import api

    answers = pd.read_json(api.predict(sft_run, pairs, out / "sft_answers.jsonl", show_progress=False), lines=True)
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    own = 0
    for row, said in zip(rows, answers["generated"]):
        said = str(said).strip().lower()
        if said in WORDS.values() and said != row["output"]:
            row["rejected"], own = said, own + 1
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"DPO pairs: {own} of {len(rows)} rejections are the SFT model's own errors", file=sys.stderr)
    return own


def _subset(rows: int | None, out: Path, src: Path = DATA / "sent_train.csv", skip: int = 0) -> Path:
    """``rows`` rows of ``src`` after a fixed shuffle, from the ``skip``-th on (all of them for
    None or 0)."""
    import pandas as pd

    if not rows:
        return src
    frame = pd.read_csv(src)
    if rows >= len(frame) and not skip:
        return src
    path = out / f"{src.stem}_{skip}_{rows}.csv"
    frame.sample(frac=1.0, random_state=0).iloc[skip:skip + rows].to_csv(path, index=False)
    return path


def _raw(row: str, backbone: str, mode: str, train_file: Path, valid: Path, out: Path) -> dict:
    """The run config of a row, before its strategy and train sections."""
    if mode in ("instruct", "dpo"):
        data = {"train": str(_instructions(train_file, out / "train.jsonl", rejected=mode == "dpo")),
                "validation": str(_instructions(valid, out / "valid.jsonl")),
                "text_column": "input", "label_column": "output", "instruction_column": "instruction",
                "clean": {"replace_urls": True}, "split": {"test_size": 0.0}}
        if mode == "dpo":
            data["rejected_column"] = "rejected"
        return {"task": "generation", "data": data,
                "model": {"backbone": backbone, "kind": "causal", "max_length": 128, "max_new_tokens": 4,
                          "system_prompt": SYSTEM}}
    if mode == "head":
        return {"data": _data(train_file, valid), "model": {"backbone": backbone, "kind": "causal",
                                                            "head": "classifier", "max_length": 64}}
    return {"data": _data(train_file, valid), "model": {"backbone": backbone, "kind": "causal", "max_length": 128,
                                                        "label_words": WORDS, "system_prompt": SYSTEM}}


def _finished(row: str) -> dict | None:
    """The metrics of the row's run folder when a run finished there (its own end-of-training
    evaluation), for --reuse: a 0.5B head row trains for hours on this CPU."""
    path = RUNS / row / "metrics.json"
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    return metrics if "validation" in metrics and "training" in metrics else None


def run_row(row: str, epochs: int, train_rows: int | None, eval_rows: int, shift_dpo: bool = False,
            reuse: bool = False) -> dict:
    from fintune import api
    from fintune.config import validate_config
    from fintune.catalogue import fetch

    from fintune.catalogue import CATALOGUE

    backbone, mode, strategy, lr, limit = ROWS[row]
    if backbone in CATALOGUE:
        fetch(backbone)
    else:
        backbone = str(ROOT / backbone)
    start, seed = CONTINUES.get(row, (None, 42))
    if start is not None and not Path(backbone).exists():
        # The calibration temperature stays out of the weights: training refits it.
        api.export(RUNS / start, format="hf", output=backbone, fold_temperature=False)
    RUNS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train_file = _subset(train_rows or limit, out, skip=SKIP.get(row, 0))
        sampled = mode != "head"
        valid = _subset(eval_rows if sampled else 0, out, DATA / "sent_valid.csv")
        raw = _raw(row, backbone, mode, train_file, valid, out)
        if mode == "dpo":
            _sft_rejections(Path(raw["data"]["train"]), RUNS / SFT, out)
        train = {"epochs": epochs if strategy else 0, "batch_size": 8 if mode == "dpo" else 16,
                 "eval_batch_size": 32, "lr": lr or 1e-4, "weight_decay": 0.0, "warmup_fraction": 0.1,
                 "checkpoint_every": 0, "early_stopping": None, "eval_precision": "auto" if sampled else "fp32"}
        cfg = validate_config({"output_dir": str(RUNS / row), "seed": seed, "strategy": strategy or {"name": "full"},
                               "train": train, **raw})
        finished = _finished(row) if reuse else None
        if finished is not None:
            print(f"{row}: reusing the finished run in {RUNS / row}", file=sys.stderr)
            metrics, run_dir = finished, RUNS / row
        else:
            result = api.train(cfg, overwrite=True, show_progress=sys.stderr.isatty())
            metrics, run_dir = result.metrics, result.run_dir
        training = metrics["training"]
        # The run's own evaluation of the validation tweets (fp32 for the head); no second pass.
        val = metrics["validation"]
        started = time.perf_counter()
        if mode == "dpo" and not shift_dpo:
            # Its question is whether DPO moved the SFT model, answered on the same validation
            # sample; the shift sets cost as much again on this CPU (--shift-dpo scores them).
            shift, shifted_rows = {}, 0
        else:
            shift, shifted_rows = _shift(run_dir, out, instructions=mode in ("instruct", "dpo"),
                                         rows=eval_rows if sampled else 0)
        seconds = max(time.perf_counter() - started, 1e-9)
    return {**shift, "weighted_f1": val["weighted_f1"], "accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "inference_samples_per_s": round(shifted_rows / seconds, 1) if shifted_rows else None,
            "shift_precision": SHIFT_PRECISION if shifted_rows else None,
            "trainable_params": training["trainable_params"] if training["global_step"] else 0,
            "validation_rows": val["n"], "precision": training["precision"],
            "train_rows": training["train_rows"] if training["global_step"] else 0, "unmatched": val.get("unmatched")}


def gguf_row(row: str) -> dict:
    """Export a finished generation run as GGUF and report the export's parity check."""
    from fintune import api

    start, kind = GGUF_ROWS[row]
    with tempfile.TemporaryDirectory() as tmp:
        valid = _instructions(DATA / "sent_valid.csv", Path(tmp) / "valid.jsonl")
        started = time.perf_counter()
        # force: a file that answers differently is kept and counted, not refused, so the row
        # records the failure instead of stopping the benchmark.
        folder = api.export(RUNS / start, format="gguf", quantize=kind, output=Path(tmp) / "gguf", data=valid,
                            force=True)
        seconds = time.perf_counter() - started
        check = json.loads((folder / "gguf_check.json").read_text(encoding="utf-8"))
    return {**{key: check[key] for key in GGUF_KEYS if key in check}, "export_seconds": round(seconds, 1),
            "differing": check["differing"]}


def _shift(run_dir: Path, out: Path, instructions: bool, rows: int) -> tuple[dict, int]:
    """Weighted F1 on news headlines and posts (SemEval-2017, FiQA-2018), as benchmarks/trust.py
    scores them (a fixed sample of ``rows`` of each; 0: all), in bf16 where the CPU runs it
    natively; and how many rows that was."""
    from trust import shift_files

    from fintune import api

    result, scored = {}, 0
    for name, full in shift_files().items():
        path = _subset(rows // 2, out, full)  # half the validation sample per set: three sets
        source = _instructions(path, out / f"{name}.jsonl") if instructions else path
        metrics = api.evaluate(run_dir, source, output=out / "shift" / name, precision=SHIFT_PRECISION)
        result[f"shift_weighted_f1_{name}"] = metrics["weighted_f1"]
        result[f"shift_rows_{name}"] = metrics["n"]
        scored += metrics["n"]
    return result, scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join([*ROWS, *GGUF_ROWS]))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-rows", type=int, help="train on this many tweets (a fixed shuffle); default: "
                        "each row's own limit")
    parser.add_argument("--eval-rows", type=int, default=EVAL_ROWS, help="prompted rows: validation tweets scored "
                        "(a fixed sample; half as many per shift set); 0: all")
    parser.add_argument("--reuse", action="store_true", help="a row whose run folder holds a finished run is "
                        "scored from it (shift sets) instead of trained again")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child in GGUF_ROWS:
        emit({**gguf_row(args.child), "peak_rss_mb": peak_rss_mb()})
        return
    if args.child:
        emit({**run_row(args.child, args.epochs, args.train_rows, args.eval_rows, reuse=args.reuse),
              "peak_rss_mb": peak_rss_mb()})
        return
    extra = ["--eval-rows", str(args.eval_rows)] + (["--train-rows", str(args.train_rows)] if args.train_rows else []) \
        + (["--reuse"] if args.reuse else [])
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT, extra_args=extra)
    reference = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    shown = {**results, **{f"{name} (text_models.json)": reference[name] for name in REFERENCE_ROWS
                           if name in reference}}
    print_table({name: row for name, row in shown.items() if name not in GGUF_ROWS}, KEYS, "row")
    exports = {name: row for name, row in results.items() if name in GGUF_ROWS}
    if exports:
        print_table(exports, GGUF_KEYS, "export")


if __name__ == "__main__":
    main()
