"""Model-risk checks on the default model: fairness before and after mitigation, accuracy
under perturbation, the drop under distribution shift, calibration, and report time.

Rows:
  tweets   all-MiniLM-L6-v2 fine-tuned on Twitter Financial News (sent_train.csv, 3 epochs),
           scored on sent_valid.csv; shift to news headlines: SemEval-2017 Task 5 (1,142
           headline/company scores, averaged per unique headline) and FiQA-2018 Task 1
           (headlines and microblog posts, train + hold-out files, averaged per sentence).
           Scores in [-1, 1] map to Bearish below -0.1, Bullish above 0.1, Neutral between.
  german   the quickstart model (German credit rows as text, 3 epochs), test split;
           fairness by personal_status_and_sex and age_in_years (quartile bins), mitigated
           with per-group demographic-parity thresholds on personal_status_and_sex fitted
           on the validation split.

    python benchmarks/trust.py [--rows tweets,german]

Writes benchmarks/results/trust.json keyed by row.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import peak_rss_mb, print_table, rows_to_run, run_rows

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULT = ROOT / "benchmarks" / "results" / "trust.json"
RUNS = ROOT / "runs" / "bench_trust"
LABELS = ["Bearish", "Bullish", "Neutral"]
NEUTRAL_BAND = 0.1


def to_class(score: float) -> str:
    return "Bearish" if score < -NEUTRAL_BAND else "Bullish" if score > NEUTRAL_BAND else "Neutral"


def shift_frames() -> dict:
    """Headline and post datasets: the mean sentiment score of each distinct text, by dataset."""
    import pandas as pd

    semeval = pd.DataFrame(json.loads((SHARED / "semeval2017_task5_headlines" / "Headline_Trainingdata.json").read_text()))
    frames = {"semeval_headlines": semeval.groupby("title")["sentiment"].mean()}
    for kind in ("headline", "post"):
        rows = []
        for split in ("train", "test"):
            data = json.loads((SHARED / "fiqa_2018_task1_sentiment" / f"task1_{kind}_ABSA_{split}.json").read_text())
            rows += [(v["sentence"], float(i["sentiment_score"])) for v in data.values() for i in v["info"]]
        frames[f"fiqa_{kind}s"] = pd.DataFrame(rows, columns=["text", "score"]).groupby("text")["score"].mean()
    return frames


def shift_files() -> dict[str, Path]:
    """Headline and post datasets as text,label CSVs (written under runs/, never committed)."""
    import pandas as pd

    out = RUNS / "shift"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, scores in shift_frames().items():
        path = out / f"{name}.csv"
        pd.DataFrame({"text": scores.index, "label": [to_class(s) for s in scores.to_numpy()]}).to_csv(path, index=False)
        files[name] = path
    return files


def tweets_config() -> dict:
    data = SHARED / "twitter_financial_news_sentiment"
    return {
        "output_dir": str(RUNS / "tweets"), "seed": 42,
        "data": {"train": str(data / "sent_train.csv"), "validation": str(data / "sent_valid.csv"),
                 "text_column": "text", "label_map": dict(enumerate(LABELS)),
                 "clean": {"replace_urls": True}, "split": {"test_size": 0.0}},
        "model": {"backbone": "minilm", "max_length": 64},
        "train": {"epochs": 3, "batch_size": 32, "lr": 1e-4, "checkpoint_every": 0},
    }


def child(row: str) -> dict:
    from fintune import api, trust
    from fintune.config import validate_config
    from fintune.workflows.quickstart import text_quickstart_config
    from fintune.report import write_report

    if row == "tweets":
        run = api.train(validate_config(tweets_config()), overwrite=True, show_progress=False)
        groups, mitigate = None, None
    else:
        run = api.train(text_quickstart_config(str(RUNS / "german")), overwrite=True, show_progress=False)
        groups, mitigate = ["personal_status_and_sex", "age_in_years"], "personal_status_and_sex"
    split = trust.held_out_split(run.run_dir)
    held = run.metrics[split]
    cal = run.metrics["calibration"]
    result: dict = {
        "split": split, "accuracy": held["accuracy"], "weighted_f1": held["weighted_f1"],
        "temperature": cal["temperature"], "ece_before": cal["ece_before"][split], "ece_after": cal["ece_after"][split],
    }
    robust = trust.robustness(run.run_dir)
    for name, r in robust["perturbations"].items():
        if r["n"]:
            result[f"accuracy_{name}"] = r["accuracy_perturbed"]
            result[f"accuracy_{name}_original"] = r["accuracy_original"]
            result[f"flip_rate_{name}"] = r["flip_rate"]
            result[f"rows_{name}"] = r["n"]
    if row == "tweets":
        for name, path in shift_files().items():
            metrics = api.evaluate(run.run_dir, path, output=RUNS / "shift" / name)
            result[f"shift_weighted_f1_{name}"] = metrics["weighted_f1"]
            result[f"shift_drop_{name}"] = held["weighted_f1"] - metrics["weighted_f1"]
    if groups:
        fair = trust.fairness(run.run_dir, groups, mitigate="demographic_parity", mitigate_on=mitigate)
        for when in ("before", "after"):
            for column, table in fair[when].items():
                result[f"dp_difference_{column}_{when}"] = table["demographic_parity_difference"]
                result[f"eo_difference_{column}_{when}"] = table["equalized_odds_difference"]
            result[f"accuracy_{when}_mitigation"] = next(iter(fair[when].values()))["accuracy"]
    start = time.perf_counter()
    write_report(run.run_dir, groups=groups)
    result["report_seconds"] = round(time.perf_counter() - start, 2)
    return {**result, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    rows = rows_to_run(__doc__, child, "tweets,german")
    if rows is None:
        return
    rows = [r for r in rows if r != "tweets" or (SHARED / "twitter_financial_news_sentiment").is_dir()]
    results = run_rows(__file__, rows, 0, RESULT)
    # One table: a line per row, the headline numbers as columns; every number is in the JSON.
    keys = ["accuracy", "ece_before", "ece_after", "accuracy_typos", "accuracy_negation", "flip_rate_negation",
            "shift_drop_semeval_headlines", "shift_drop_fiqa_headlines",
            "dp_difference_personal_status_and_sex_before", "dp_difference_personal_status_and_sex_after",
            "report_seconds"]
    print_table(results, keys, "row", 14)


if __name__ == "__main__":
    main()
