"""Model-risk checks on finished tiny runs: fairness CLI/API and mitigation, robustness,
explanations, and the HTML report (rendered in headless Chromium when one is installed)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fintune import api, trust
from fintune.evaluation.explain import _merge_pieces
from fintune.evaluation.robustness import PERTURBATIONS
from fintune.predictors import FintuneModel
from fintune.report import write_report
from tests.conftest import assert_rendered, credit_frame, sentiment_frame, write_config


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("trust_text")
    frame = sentiment_frame(300, seed=2)
    frame["text"] = [t + (" $AAPL up 5%" if i % 3 == 0 else "") for i, t in enumerate(frame["text"])]
    frame.to_csv(folder / "train.csv", index=False)
    config = write_config(folder / "c.yaml", tiny_bert, folder / "train.csv", folder / "run",
                          data={"split": {"method": "stratified", "validation_size": 0.2, "test_size": 0.2}},
                          train={"epochs": 6})
    return api.train(config, show_progress=False).run_dir


@pytest.fixture(scope="module")
def credit_run(tmp_path_factory, tiny_bert: Path) -> Path:
    folder = tmp_path_factory.mktemp("trust_credit")
    frame = credit_frame(600, seed=4)
    frame["sex"] = np.where(np.arange(600) % 2 == 0, "female", "male")
    frame.to_csv(folder / "credit.csv", index=False)
    config = write_config(
        folder / "c.yaml", tiny_bert, folder / "credit.csv", folder / "run",
        data={"text_column": None, "feature_columns": ["income", "debt_ratio", "purpose", "age", "sex"],
              "label_names": ["good", "bad"], "split": {"validation_size": 0.25, "test_size": 0.25}},
        model={"backbone": str(tiny_bert), "kind": "gbm", "gbm": {"n_estimators": 100, "min_child_samples": 5}})
    return api.train(config, show_progress=False).run_dir


def test_runs_record_calibration_and_splits(text_run: Path) -> None:
    metrics = json.loads((text_run / "metrics.json").read_text())
    cal = metrics["calibration"]
    assert cal["fitted"] > 0 and isinstance(cal["applied"], bool) and cal["reason"]
    assert cal["temperature"] == (cal["fitted"] if cal["applied"] else 1.0)
    assert 0.0 <= metrics["test"]["ece"] <= 1.0
    splits = json.loads((text_run / "splits.json").read_text())
    assert len(splits["test"]["rows"]) == metrics["test"]["n"]
    examples, table = api.load_split(text_run, "test")
    assert examples.texts[0] == table["text"].iloc[0].strip()


def test_fairness_by_group_and_mitigation_saved_with_the_model(credit_run: Path) -> None:
    result = trust.fairness(credit_run, ["sex", "age:30,50"], mitigate="demographic_parity", mitigate_on="age")
    before = result["before"]
    assert set(before["age"]["groups"]) == {"<30", "30-50", ">=50"}
    assert set(before["sex"]["groups"]) == {"female", "male"}
    assert "after" in result and result["mitigation"]["column"] == "age"
    model = FintuneModel.load(credit_run)
    assert model.group_thresholds is not None and set(model.group_thresholds.thresholds) == {"<30", "30-50", ">=50"}
    assert model.group_thresholds.to_dict()["method"] == "threshold_optimizer"
    # Narrow age bins leave groups too small to trust; the result (and the report) says so.
    narrow = trust.fairness(credit_run, ["age:21,22"])
    assert any(w.startswith("'age': ") and "<21 (" in w and "will not hold on new data" in w for w in narrow["warnings"])
    # predict uses the group column, and refuses input without it
    rows = pd.read_csv(json.loads((credit_run / "splits.json").read_text())["test"]["file"]).iloc[:20]
    rows.to_csv(credit_run / "rows.csv", index=False)
    api.predict(credit_run, credit_run / "rows.csv", credit_run / "out.csv", show_progress=False)
    rows.drop(columns=["age"]).to_csv(credit_run / "no_age.csv", index=False)
    with pytest.raises(Exception, match="feature column 'age'|per-group thresholds on 'age'"):
        api.predict(credit_run, credit_run / "no_age.csv", credit_run / "out2.csv", show_progress=False)


def test_evaluate_with_groups_writes_a_fairness_table(credit_run: Path) -> None:
    file = json.loads((credit_run / "splits.json").read_text())["test"]["file"]
    metrics = api.evaluate(credit_run, file, groups=["sex"])
    table = metrics["fairness"]["sex"]
    assert set(table["groups"]) == {"female", "male"} and 0.0 <= table["demographic_parity_difference"] <= 1.0
    # The gap is the difference of the groups' selection rates, as the table lists them.
    rates = [g["selection_rate"] for g in table["groups"].values()]
    assert table["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates))
    written = json.loads((credit_run / "eval" / Path(file).stem / "fairness.json").read_text())
    assert written["sex"] == table


@pytest.mark.parametrize("name, text, expected", [
    ("lowercase", "Acme BEATS", "acme beats"),
    ("ticker_swap", "buy $AAPL now", None),
    ("company_swap", "Apple beats", None),
    ("number_change", "up 5% in Q3", None),
    ("negation", "guidance is strong", "guidance is not strong"),
    ("negation_zh", "公司业绩会超出预期", "公司业绩不会超出预期"),
    ("negation_zh", "公司有盈利", "公司没有盈利"),
])
def test_perturbations(name, text, expected):
    pert = next(p for p in PERTURBATIONS if p.name == name)
    out = pert.apply(text, random.Random(0))
    if expected is not None:
        assert out == expected
    else:
        assert out is not None and out != text
    if name == "ticker_swap":
        assert out.startswith("buy $") and "$AAPL" not in out
    if name == "number_change":
        assert out.endswith("in Q3") and "5%" not in out
    if name.startswith("negation"):
        assert pert.apply("no aux verb here" if name == "negation" else "股价上涨", random.Random(0)) is None


def test_robustness_suite_reports_every_perturbation(text_run: Path) -> None:
    result = trust.robustness(text_run)
    rows = result["perturbations"]
    assert {"typos", "lowercase", "negation", "ticker_swap"} <= set(rows)
    assert rows["ticker_swap"]["n"] > 0 and 0 <= rows["ticker_swap"]["flip_rate"] <= 1
    # The tiny model lowercases its input (do_lower_case): casing cannot flip anything.
    assert rows["uppercase"]["flip_rate"] == 0.0


def test_integrated_gradients_attributions_add_up(text_run: Path) -> None:
    exp = trust.explain_text(text_run, "acme beats the guidance")
    assert [w for w, _ in exp.parts] == ["acme", "beats", "the", "guidance"]
    # Completeness: attributions sum to p(input) - p(baseline) for the target class.
    model = FintuneModel.load(text_run)
    target = model.label_names.index(exp.label)
    assert exp.probability == pytest.approx(model.outputs(["acme beats the guidance"])[0][target], abs=1e-4)
    ids = model.tokenizer("acme beats the guidance", return_tensors="pt")["input_ids"]
    baseline = ids.clone()
    baseline[0, 1:-1] = model.tokenizer.pad_token_id  # [CLS] and [SEP] stay, as in the explainer
    with torch.no_grad():
        logits = model.model(input_ids=baseline, attention_mask=torch.ones_like(ids)).logits
    p_baseline = float((logits / model.temperature).softmax(-1)[0, target])
    assert sum(a for _, a in exp.parts) == pytest.approx(exp.probability - p_baseline, abs=0.05)
    assert "<span" in exp.to_html()


def test_word_pieces_merge_into_words():
    words = _merge_pieces(["[CLS]", "earn", "##ings", "up", "[SEP]"], np.array([0, 0.5, 0.25, -1, 0]),
                          np.array([1, 0, 0, 0, 1]))
    assert words == [("earnings", 0.75), ("up", -1.0)]


def test_occlusion_explains_each_column_of_a_row(credit_run: Path) -> None:
    exp = trust.explain_rows(credit_run, [0])[0]
    assert [p.split(" = ")[0] for p, _ in exp.parts] == ["income", "debt_ratio", "age", "purpose", "sex"]
    assert max(abs(a) for _, a in exp.parts) > 0


def _report_checks(path: Path, images: int) -> None:
    page = path.read_text(encoding="utf-8")
    for section in ("Model", "Data", "Metrics", "Calibration", "Fairness", "Robustness", "Explanations", "Model card"):
        assert f"<h2>{section}</h2>" in page
    assert page.count('src="data:image/png;base64,') == images
    # Nothing to fetch: no remote sources, stylesheets or scripts (links in text are fine).
    assert 'src="http' not in page and "<link" not in page and "<script" not in page


# Three classes: a confusion matrix; two: also ROC, precision-recall and calibration plots.
@pytest.mark.parametrize("which, groups, images", [("text_run", None, 1), ("credit_run", ["sex", "age"], 4)])
def test_report_is_one_self_contained_page(which, groups, images, request):
    run = request.getfixturevalue(which)
    path = write_report(run, groups=groups)
    _report_checks(path, images)
    if groups:
        assert "demographic parity difference" in path.read_text(encoding="utf-8")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(credit_run: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = write_report(credit_run, groups=["sex"])
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(path.resolve().as_uri())
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        tables = page.eval_on_selector_all("table", "els => els.length")
        title = page.title()
        browser.close()
    assert images and all(images)
    assert tables >= 5
    assert title.startswith("fintune report")
    assert errors == []
    assert_rendered(path.with_suffix(".png"))


def test_cli_explain_fairness_report_and_shift(text_run: Path, credit_run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["explain", str(text_run), "acme beats the guidance", "--html", str(tmp_path / "e.html")])
    assert result.exit_code == 0, result.output
    assert "<span" in (tmp_path / "e.html").read_text()
    result = runner.invoke(app, ["explain", str(text_run)])
    assert result.exit_code == 2 and "say what to explain" in result.output
    result = runner.invoke(app, ["explain", str(text_run), "--row", "0"])  # a text's row: words, not columns
    assert result.exit_code == 0 and "word" in result.output and "column = value" not in result.output
    result = runner.invoke(app, ["fairness", str(credit_run), "--groups", "sex,age:30,50"])
    assert result.exit_code == 0, result.output
    assert set(json.loads((credit_run / "fairness.json").read_text())["before"]) == {"sex", "age"}
    result = runner.invoke(app, ["fairness", str(credit_run), "--groups", "no_such_column"])
    assert result.exit_code == 2 and "group column 'no_such_column' is not in the data" in result.output
    result = runner.invoke(app, ["report", str(credit_run), "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 0 and (tmp_path / "r.html").exists()
    # Shift: another file's scores come with the gap to the run's own held-out split.
    other = tmp_path / "other.csv"
    sentiment_frame(60, seed=9).to_csv(other, index=False)
    metrics = api.evaluate(text_run, other)
    assert set(metrics["shift_vs_run"]) >= {"accuracy", "weighted_f1"}


def test_explain_cli_says_what_to_give_and_which_row_it_explains(credit_run: Path) -> None:
    from typer.testing import CliRunner

    from fintune.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["explain", str(credit_run)])
    assert out.exit_code == 2 and "say what to explain" in out.output and "--row N" in out.output
    out = runner.invoke(app, ["explain", str(credit_run), "some text", "--row", "1"])
    assert out.exit_code == 2 and "not both" in out.output
    out = runner.invoke(app, ["explain", str(credit_run), "--row", "0"])
    assert out.exit_code == 0, out.output
    examples, _ = api.load_split(credit_run, "test")
    assert f"row 0 of the run's test split: {examples.texts[0]}" in " ".join(out.output.split())


def test_report_lists_evaluations_on_the_users_own_files(credit_run: Path, tmp_path: Path) -> None:
    file = json.loads((credit_run / "splits.json").read_text())["test"]["file"]
    holdout = tmp_path / "q3_applications.csv"
    pd.read_csv(file).iloc[:80].to_csv(holdout, index=False)
    metrics = api.evaluate(credit_run, holdout)
    page = write_report(credit_run).read_text(encoding="utf-8")
    assert "Evaluations on other files" in page and "<td>q3_applications</td>" in page
    assert f"{metrics['n']}" in page


def test_the_model_card_carries_hub_metadata_and_renders_as_html(credit_run: Path) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(credit_run / "model" / "README.md")
    assert card.data.pipeline_tag == "tabular-classification" and "fintune" in card.data.tags
    assert card.data.datasets and card.data.eval_results
    test = [r for r in card.data.eval_results if r.dataset_split == "test"]
    metrics = json.loads((credit_run / "metrics.json").read_text())["test"]
    assert {r.metric_type: r.metric_value for r in test}["roc_auc"] == pytest.approx(metrics["roc_auc"])
    assert "https://github.com/)" not in card.content  # no placeholder links
    page = write_report(credit_run).read_text(encoding="utf-8")
    assert "<pre>---" not in page and "<h1>Model card:" in page and "card metadata" in page


def test_a_text_model_over_table_rows_is_explained_per_column(tiny_bert: Path, tmp_path: Path) -> None:
    frame = credit_frame(300, seed=2)
    frame.to_csv(tmp_path / "credit.csv", index=False)
    columns = ["income", "debt_ratio", "purpose", "age"]
    config = write_config(tmp_path / "t.yaml", tiny_bert, tmp_path / "credit.csv", tmp_path / "run",
                          data={"text_column": None, "feature_columns": columns, "label_names": ["good", "bad"]},
                          train={"epochs": 1})
    run = api.train(config, show_progress=False)
    model = FintuneModel.load(run.run_dir)
    assert model.kind == "text" and model.explanation_method == "occlusion"
    exp = trust.explain_rows(run.run_dir, [0])[0]
    assert [part.split(" = ")[0] for part, _ in exp.parts] == columns  # one attribution per column, no word pieces


def test_report_prints_each_step_and_formats_numbers_for_people(credit_run: Path, capsys) -> None:
    from fintune.report import number, percent

    path = write_report(credit_run, groups=["sex"])
    err = capsys.readouterr().err
    for i, step in enumerate(["model", "data", "metrics", "calibration", "fairness", "robustness", "explanations",
                              "model card"], 1):
        assert f"report {i}/8: {step} (" in err
    page = path.read_text(encoding="utf-8")
    assert "(m:ss)" in page and "0.0000<" not in page
    assert number(22713986.0) == "22,713,986" and number(0.83275) == "0.833" and number(0.0) == "0"
    assert percent(0.0) == "0.0%" and percent(0.0523) == "5.2%"
