"""Privacy: masking quality on a written corpus, and DP-SGD's cost and effect on tweet sentiment.

Masking rows (``mask_<TYPE>``): recall and precision per personal-data type on the Faker
corpus of ``tests/pii_corpus.py`` (500 sentences per type plus 1,500 near misses: tickers,
ISINs, CUSIPs, amounts, invoice numbers, card-like numbers failing Luhn, dates, companies and
places named like people), and ``mask_PERSON_sec_filings``: recall of the multi-token person
names annotated in the SEC-filings NER data (its single-token PER labels are mostly defined
roles such as "Borrower", which are not personal data). Targets: recall >= 0.99 on structured
types, >= 0.90 on names; precision >= 0.95.

DP rows on Twitter Financial News sentiment: the default backbone, strategy ``freeze`` with
the pooler and head trained (a DP linear probe on the frozen encoder: DP noise grows with
the number of trained parameters), batch 512, 4 epochs, fixed epochs (no early stopping, so
the validation split stays unseen), without DP and with DP-SGD at epsilon 1, 3 and 8
(delta 1e-5, clipping 1.0): weighted F1 on the validation tweets, epsilon spent, and the loss-threshold membership
inference audit (ROC-AUC, advantage) on 2,000 training vs 2,000 validation tweets. The row
``default_full`` audits the default model of ``benchmarks/strategies_tfns.py`` (full
fine-tuning, 3 epochs, no DP) when it is there.

``probe_*`` rows: ``model.kind: probe``, a linear layer on MiniLM's mean-pooled sentence
vectors computed once (Tramèr & Boneh 2021), 100 epochs of batches of 1,024, lr 0.02, without
DP and at epsilon 1, 3 and 8: the private model the issue asks for (within 5 points of its
non-private twin at epsilon 8, 15 points above the majority class at epsilon 1).

    python benchmarks/privacy.py                     # all rows
    python benchmarks/privacy.py --rows mask,no_dp   # some

Writes benchmarks/results/privacy.json keyed by row.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common import emit, peak_rss_mb, print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
TWEETS = DATA / "twitter_financial_news_sentiment"
SEC = DATA / "sec_filings_ner"
RESULT = ROOT / "benchmarks" / "results" / "privacy.json"
RUNS = ROOT / "runs" / "bench_privacy"
DEFAULT_RUN = ROOT / "runs" / "bench_strategies" / "full"
STRUCTURED = ("EMAIL", "IBAN", "SSN", "SORT_CODE", "ACCOUNT", "CARD", "SWIFT", "IP", "DOB", "PHONE")
DP_ROWS = {"no_dp": None, "dp_eps1": 1.0, "dp_eps3": 3.0, "dp_eps8": 8.0,
           "probe_no_dp": None, "probe_dp_eps1": 1.0, "probe_dp_eps3": 3.0, "probe_dp_eps8": 8.0}
KEYS = ["recall", "precision", "target_met", "weighted_f1", "epsilon_spent", "noise_multiplier",
        "mia_auc", "mia_advantage", "train_seconds", "peak_rss_mb"]


def masking_rows() -> dict:
    from fintune.config import PrivacyConfig
    from fintune.data.privacy import detect
    from tests.pii_corpus import corpus, score

    cfg = PrivacyConfig()
    rows = {}
    for kind, row in score(corpus(per_type=500, near_misses=1500, seed=0), lambda t: detect(t, cfg)).items():
        target = 0.90 if kind == "PERSON" else 0.99
        rows[f"mask_{kind}"] = {**row, "target_met": bool(row["recall"] >= target and row["precision"] >= 0.95)}
    if SEC.exists():
        rows["mask_PERSON_sec_filings"] = sec_names(PrivacyConfig(types=["PERSON"]))
    return rows


def sec_names(cfg) -> dict:
    """Recall of multi-token PER spans in the SEC filings (FIN3 and FIN5)."""
    from fintune.data.privacy import detect

    gold = found = 0
    for name in ("FIN3.txt", "FIN5.txt"):
        for tokens in _sentences(SEC / name):
            text, spans, prev = "", [], "O"
            for token, tag in tokens:
                text += (" " if text else "")
                start = len(text)
                text += token
                if tag.endswith("PER"):
                    spans[-1:] = [(spans[-1][0], len(text))] if prev.endswith("PER") else spans[-1:] + [(start, len(text))]
                prev = tag
            detected = detect(text, cfg)
            for start, end in spans:
                if " " in text[start:end]:
                    gold += 1
                    found += any(s.start < end and s.end > start for s in detected)
    return {"recall": found / gold, "gold": gold, "detected": found}


def _sentences(path: Path) -> list[list[tuple[str, str]]]:
    out, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                out.append(current)
            current = []
            continue
        parts = line.split()
        current.append((parts[0], parts[-1]))
    return out + ([current] if current else [])


def dp_config(row: str) -> dict:
    epsilon = DP_ROWS[row]
    if row.startswith("probe"):
        return probe_config(row, epsilon)
    train = {"epochs": 4, "batch_size": 512, "lr": 3e-3, "checkpoint_every": 0, "early_stopping": None,
             "warmup_fraction": 0.05}
    if epsilon is not None:
        train["privacy"] = {"dp": {"epsilon": epsilon, "delta": 1e-5, "max_grad_norm": 1.0}}
    return {
        "output_dir": str(RUNS / row), "seed": 42,
        "data": {"train": str(TWEETS / "sent_train.csv"), "validation": str(TWEETS / "sent_valid.csv"),
                 "text_column": "text", "label_map": {0: "Bearish", 1: "Bullish", 2: "Neutral"},
                 "clean": {"replace_urls": True}, "split": {"test_size": 0.0}},
        "model": {"backbone": "minilm", "max_length": 64},
        "strategy": {"name": "freeze", "trainable_layers": 0},
        "train": train,
    }


def probe_config(row: str, epsilon: float | None) -> dict:
    """The linear probe (model.kind: probe): MiniLM's sentence vectors computed once, a linear
    layer trained on them for 100 epochs of Poisson batches of 1,024 (Tramèr & Boneh 2021:
    private learning needs good features and many steps, not a private encoder)."""
    train = {"epochs": 100, "batch_size": 1024, "lr": 0.02, "checkpoint_every": 0, "early_stopping": None,
             "warmup_fraction": 0.0}
    if epsilon is not None:
        train["privacy"] = {"dp": {"epsilon": epsilon, "delta": 1e-5, "max_grad_norm": 1.0}}
    cfg = dp_config_base(row)
    return {**cfg, "model": {"backbone": "minilm", "max_length": 64, "kind": "probe"}, "train": train}


def dp_config_base(row: str) -> dict:
    return {"output_dir": str(RUNS / row), "seed": 42,
            "data": {"train": str(TWEETS / "sent_train.csv"), "validation": str(TWEETS / "sent_valid.csv"),
                     "text_column": "text", "label_map": {0: "Bearish", 1: "Bullish", 2: "Neutral"},
                     "clean": {"replace_urls": True}, "split": {"test_size": 0.0}}}


def dp_row(row: str) -> dict:
    from fintune import api
    from fintune.config import validate_config
    from fintune.trust import privacy_audit

    start = time.time()
    result = api.train(validate_config(dp_config(row)), overwrite=True, show_progress=False)
    training = result.metrics["training"]
    audit = privacy_audit(result.run_dir)
    privacy = training.get("privacy") or {}
    return {"weighted_f1": result.metrics["validation"]["weighted_f1"],
            "epsilon_spent": privacy.get("epsilon_spent"), "noise_multiplier": privacy.get("noise_multiplier"),
            "mia_auc": audit["auc"], "mia_advantage": audit["advantage"], "mia_rows_each": audit["rows_each"],
            "train_seconds": training["train_seconds"], "train_samples_per_s": training["train_samples_per_s"],
            "wall_seconds": round(time.time() - start, 1), "peak_rss_mb": peak_rss_mb()}


def default_row() -> dict:
    """The default model (full fine-tuning, no DP) trained before splits.json existed: its
    members are the training file after the same cleaning, its non-members the validation file."""
    from fintune.config import load_config
    from fintune.data import prepare_data
    from fintune.evaluation.privacy_audit import membership_inference
    from fintune.predictors import FintuneModel

    model = FintuneModel.load(DEFAULT_RUN)
    data = prepare_data(load_config(DEFAULT_RUN / "config.yaml").data, "classification", seed=42)
    audit = membership_inference(model, data.train, data.validation)
    return {"weighted_f1": json.loads((DEFAULT_RUN / "metrics.json").read_text())["validation"]["weighted_f1"],
            "mia_auc": audit["auc"], "mia_advantage": audit["advantage"], "mia_rows_each": audit["rows_each"]}


def main() -> None:
    import argparse
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="mask," + ",".join(DP_ROWS) + ",default_full")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        emit(dp_row(args.child) if args.child in DP_ROWS else default_row())
        return
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    for row in args.rows.split(","):
        if row == "mask":
            results.update(masking_rows())
        elif (row in DP_ROWS and TWEETS.exists()) or (row == "default_full" and DEFAULT_RUN.exists()):
            # Each training row in its own process: peak memory is the row's own.
            proc = subprocess.run([sys.executable, __file__, "--child", row], stdout=subprocess.PIPE, text=True,
                                  check=True)
            line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
            results[row] = json.loads(line[len("RESULT "):])
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(results, indent=2) + "\n")
        print(row, "done", flush=True)
    print_table(results, KEYS, "row", width=10)


if __name__ == "__main__":
    main()
