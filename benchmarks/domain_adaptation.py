"""Domain adaptation on TFNS tweet sentiment: continued pretraining (TAPT, DAPT) of MiniLM, and
a MiniLM student distilled from the best MPNet run (issue 20).

Corpus (unlabeled; built under runs/bench_domain, never committed): TFNS training tweets,
half of the FiQA-2018 headlines and posts and of the SemEval-2017 headlines (by a hash of the
text), and the sentences of the SEC-filings NER files. The leakage guard (`corpus.exclude`)
removes TFNS `sent_valid.csv` and the other halves of FiQA and SemEval, on which the shift
rows are scored: no evaluated text was pretrained on.

Rows (TFNS sent_train.csv -> sent_valid.csv, MiniLM fine-tuned as benchmarks/text_models.py
does: 3 epochs, lr 1e-4, batch 32, 64 tokens):
  minilm_plain          no pretraining
  minilm_tapt           after MLM on the TFNS training tweets only (task-adaptive)
  minilm_dapt           after MLM on the whole corpus (domain-adaptive)
  minilm_dapt_gradual   the DAPT backbone fine-tuned with the gradual strategy
  student_minilm        MiniLM distilled from the best MPNet run of text_models.py (soft
                        targets on the training tweets and the corpus texts, alpha 0.5, T 2)

    python benchmarks/domain_adaptation.py [--rows minilm_plain,minilm_tapt] [--pretrain-epochs 3]

Writes benchmarks/results/domain_adaptation.json keyed by row: weighted_f1, accuracy, macro_f1,
seconds (fine-tuning), pretrain_seconds, held-out MLM loss before/after, shift weighted F1 on
the held-out halves, inference samples/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import emit, peak_rss_mb, print_table, run_rows

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TFNS = SHARED / "twitter_financial_news_sentiment"
RUNS = ROOT / "runs" / "bench_domain"
TEACHERS = ROOT / "runs" / "bench_text_models"
RESULT = ROOT / "benchmarks" / "results" / "domain_adaptation.json"
TEXT_MODELS = ROOT / "benchmarks" / "results" / "text_models.json"
LABELS = ["Bearish", "Bullish", "Neutral"]
ROWS = ["minilm_plain", "minilm_tapt", "minilm_dapt", "minilm_dapt_gradual", "student_minilm"]
KEYS = ["weighted_f1", "accuracy", "macro_f1", "seconds", "pretrain_seconds", "mlm_loss_before", "mlm_loss_after",
        "shift_weighted_f1_semeval_headlines", "shift_weighted_f1_fiqa_headlines", "shift_weighted_f1_fiqa_posts",
        "inference_samples_per_s"]


def corpus_files() -> dict[str, list[Path]]:
    """The corpus halves and the held-out halves (scored, excluded from the corpus) of the shift sets."""
    import pandas as pd

    from fintune.data.corpus import is_held_out

    out = RUNS / "data"
    out.mkdir(parents=True, exist_ok=True)
    from trust import shift_frames, to_class

    frames = shift_frames()
    corpus, shift = [TFNS / "sent_train.csv"], []
    for name, scores in frames.items():
        table = pd.DataFrame({"text": scores.index, "label": [to_class(s) for s in scores.to_numpy()]})
        held = table["text"].map(lambda t: is_held_out(t, 0.5))
        table[held].to_csv(out / f"shift_{name}.csv", index=False)
        table[~held][["text"]].to_csv(out / f"corpus_{name}.csv", index=False)
        corpus.append(out / f"corpus_{name}.csv")
        shift.append(out / f"shift_{name}.csv")
    sec = out / "sec_filings"
    sec.mkdir(exist_ok=True)
    for name in ("FIN5", "FIN3"):
        sentences, words = [], []
        for line in (SHARED / "sec_filings_ner" / f"{name}.txt").read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    sentences.append(" ".join(words))
                words = []
            else:
                words.append(line.split()[0])
        if words:
            sentences.append(" ".join(words))
        (sec / f"{name}.txt").write_text("\n\n".join(sentences), encoding="utf-8")
    corpus.append(sec)
    return {"corpus": corpus, "shift": shift}


def pretrain(name: str, sources: list[Path], epochs: int) -> dict:
    """The adapted backbone (trained once; a finished run is reused)."""
    from fintune import api
    from fintune.rundir import read_metrics

    files = corpus_files()
    run = RUNS / name
    if (run / "metrics.json").exists() and (run / "model" / "pretraining.json").exists():
        return read_metrics(run)
    cfg = {"output_dir": str(run), "seed": 42, "backbone": "minilm", "max_length": 128,
           "corpus": {"sources": [str(s) for s in sources], "clean": {"replace_urls": True},
                      "exclude": [str(TFNS / "sent_valid.csv"), *map(str, files["shift"])],
                      "validation_fraction": 0.05},
           "train": {"epochs": epochs, "batch_size": 32, "lr": 1e-4, "warmup_fraction": 0.06,
                     "checkpoint_every": 200, "early_stopping": None}}
    return api.pretrain(cfg, overwrite=True, show_progress=sys.stderr.isatty()).metrics


def data() -> dict:
    return {"train": str(TFNS / "sent_train.csv"), "validation": str(TFNS / "sent_valid.csv"), "text_column": "text",
            "label_column": "label", "label_map": dict(enumerate(LABELS)), "clean": {"replace_urls": True},
            "split": {"test_size": 0.0}}


def finetune(name: str, backbone: str, strategy: dict, lr: float = 1e-4) -> dict:
    from fintune import api
    from fintune.config import validate_config

    cfg = validate_config({"output_dir": str(RUNS / name), "seed": 42, "data": data(),
                           "model": {"backbone": backbone, "max_length": 64}, "strategy": strategy,
                           "train": {"epochs": 3, "batch_size": 32, "lr": lr, "weight_decay": 0.01,
                                     "warmup_fraction": 0.1, "checkpoint_every": 0, "early_stopping": None}})
    result = api.train(cfg, overwrite=True, show_progress=sys.stderr.isatty())
    return score(result, result.metrics["training"]["train_seconds"])


def score(result, seconds: float) -> dict:
    from fintune import api

    started = time.perf_counter()
    val = api.evaluate(result.run_dir, TFNS / "sent_valid.csv")
    inference = val["n"] / (time.perf_counter() - started)
    row = {"weighted_f1": val["weighted_f1"], "accuracy": val["accuracy"], "macro_f1": val["macro_f1"],
           "seconds": round(seconds, 1), "inference_samples_per_s": round(inference, 1),
           "train_samples_per_s": result.metrics["training"]["train_samples_per_s"]}
    for path in corpus_files()["shift"]:
        name = path.stem.removeprefix("shift_")
        metrics = api.evaluate(result.run_dir, path, output=RUNS / "shift" / result.run_dir.name / name)
        row[f"shift_weighted_f1_{name}"] = metrics["weighted_f1"]
        row[f"shift_rows_{name}"] = metrics["n"]
    return row


def best_teacher() -> Path:
    """The MPNet run of text_models.py with the best TFNS weighted F1 whose folder is kept."""
    results = json.loads(TEXT_MODELS.read_text()) if TEXT_MODELS.exists() else {}
    kept = [(results[r]["weighted_f1"], r) for r in results
            if r.startswith("mpnet") and (TEACHERS / r / "metrics.json").exists()]
    if not kept:
        raise SystemExit("no MPNet run kept under runs/bench_text_models: run benchmarks/text_models.py "
                         "--rows mpnet_lora (or mpnet_full, mpnet_gradual) first")
    return TEACHERS / max(kept)[1]


def child(row: str, epochs: int) -> dict:
    files = corpus_files()
    if row == "minilm_plain":
        return finetune(row, "minilm", {"name": "full"})
    if row == "student_minilm":
        from fintune.workflows.distill import distill

        import yaml

        teacher = best_teacher()
        # The student trains as minilm_plain does (the teacher's own config may be LoRA on MPNet).
        student = RUNS / "student.yaml"
        student.write_text(yaml.safe_dump({
            "output_dir": str(RUNS / row), "seed": 42, "data": data(), "model": {"backbone": "minilm", "max_length": 64},
            "strategy": {"name": "full"}, "train": {"epochs": 3, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01,
                                                     "warmup_fraction": 0.1, "checkpoint_every": 0,
                                                     "early_stopping": None}}), encoding="utf-8")
        started = time.perf_counter()
        result = distill(teacher, str(student), unlabeled=files["corpus"][1:], overwrite=True,
                         show_progress=sys.stderr.isatty())
        out = score(result, time.perf_counter() - started)
        return {**out, "teacher": teacher.name, "teacher_weighted_f1": json.loads(TEXT_MODELS.read_text())
                [teacher.name]["weighted_f1"]}
    sources = [TFNS / "sent_train.csv"] if row == "minilm_tapt" else files["corpus"]
    adapted = pretrain("pretrain_tapt" if row == "minilm_tapt" else "pretrain_dapt", sources, epochs)
    strategy = {"name": "gradual"} if row.endswith("gradual") else {"name": "full"}
    backbone = RUNS / ("pretrain_tapt" if row == "minilm_tapt" else "pretrain_dapt") / "model"
    out = finetune(row, str(backbone), strategy)
    return {**out, "pretrain_seconds": adapted["training"]["train_seconds"],
            "pretrain_steps": adapted["training"]["global_step"], "mlm_loss_before": adapted["before"]["loss"],
            "mlm_loss_after": adapted["validation"]["loss"], "corpus_tokens": adapted["corpus"]["train_tokens"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--pretrain-epochs", dest="epochs", type=int, default=3)
    parser.add_argument("--epochs", dest="epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit({**child(args.child, args.epochs), "peak_rss_mb": peak_rss_mb()})
        return
    results = run_rows(__file__, args.rows.split(","), args.epochs, RESULT)
    print_table(results, KEYS, "row", 14)


if __name__ == "__main__":
    main()
