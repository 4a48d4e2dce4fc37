"""The board's pieces without a browser: the form's config, the data report, runs, password."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fintune.board.forms import build_config, report_markdown
from fintune.board.listing import run_folder, runs_table
from fintune.board.jobs import Jobs
from fintune.errors import ConfigError, FintuneError
from tests.board.test_board import free_port

FORM = dict(path="news.csv", task="classification", kind="text", text_column="text", feature_columns=[],
            label_column="label", date_column="", backbone="minilm", strategy="lora", epochs=3, max_steps=0,
            batch_size=32, lr=5e-5, max_length=128)


def test_the_form_is_validated_by_the_config_models(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, "run_1", **FORM)
    assert cfg.strategy.name == "lora" and cfg.train.max_steps is None and cfg.output_dir == str(tmp_path / "run_1")
    with pytest.raises(FintuneError, match="run name"):
        build_config(tmp_path, "../escape", **FORM)
    with pytest.raises(ConfigError, match="model.kind 'fusion' needs data.feature_columns"):
        build_config(tmp_path, "r", **{**FORM, "kind": "fusion"})


def test_the_form_can_start_from_a_yaml_config_and_checks_what_the_cli_checks(tmp_path: Path) -> None:
    import yaml

    from fintune import api
    from tests.conftest import sentiment_frame

    frame = sentiment_frame(60)
    frame.loc[:9, "text"] = frame.loc[:9, "text"] + " see https://example.com/a/very/long/path/to/a/page"
    frame.to_csv(tmp_path / "news.csv", index=False)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "output_dir": "runs/x", "data": {"train": "news.csv", "text_column": "text", "clean": {"replace_urls": True}},
        "model": {"backbone": "minilm", "max_length": 64}, "decision": {"temperature_scaling": False}}))
    form = {**FORM, "path": str(tmp_path / "news.csv"), "strategy": "full", "max_length": 64}
    cfg = build_config(tmp_path, "r", **form, base=str(tmp_path / "base.yaml"))
    assert cfg.data.clean.replace_urls and not cfg.decision.temperature_scaling  # the file's, kept
    assert cfg.output_dir == str(tmp_path / "r") and cfg.strategy.name == "full"  # the form's, on top
    board = api.data_check(cfg, output=tmp_path / "board.json")
    cli = api.data_check(tmp_path / "base.yaml", output=tmp_path / "cli.json")
    assert board["text_length"] == cli["text_length"]  # the same counts for the same config
    assert not build_config(tmp_path, "r", **form).data.clean.replace_urls  # without a base: the defaults


def test_runs_table_and_data_report(tmp_path: Path, make_config) -> None:
    from fintune import api

    result = api.train(make_config(), show_progress=False)
    table = runs_table(result.run_dir.parent, Jobs(tmp_path / "board"))
    row = table.iloc[0]
    assert (row["run"], row["status"], row["metric"]) == (result.run_dir.name, "finished", "weighted_f1")
    assert row["validation"] == round(result.metrics["validation"]["weighted_f1"], 4)
    text = report_markdown(json.loads((result.run_dir / "data_check.json").read_text()))
    assert "| positive |" in text and "duplicates removed: 0" in text


def test_password_guards_the_board(tmp_path: Path) -> None:
    from fintune.board import launch

    port = free_port()
    demo = launch(tmp_path / "runs", port=port, password="s3cret", block=False)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/config").status_code == 401
        with httpx.Client(base_url=base) as client:
            assert client.post("/login", data={"username": "x", "password": "wrong"}).status_code == 400
            assert client.post("/login", data={"username": "x", "password": "s3cret"}).status_code == 200
            assert client.get("/config").status_code == 200
    finally:
        demo.close()


def test_try_it_explains_a_text_and_a_row(tmp_path: Path, make_config, tiny_bert: Path) -> None:
    from fintune import api
    from fintune.board.trying import try_it
    from fintune.predictors import FintuneModel
    from tests.conftest import credit_frame, write_config

    text_run = api.train(make_config(), show_progress=False).run_dir
    probs, parts = try_it(FintuneModel.load(text_run), "acme beats the quarter", None)
    assert set(probs) == {"negative", "neutral", "positive"} and abs(sum(probs.values()) - 1) < 1e-5
    assert [p.strip() for p, _ in parts] and max(abs(v) for _, v in parts) == pytest.approx(1.0)
    # The page shades them in the report's colours: green toward the label, red against.
    from fintune.board.trying import attribution_html
    from fintune.evaluation.explain import Explanation

    page = attribution_html([("beats ", 0.9), ("misses ", -0.6)])
    report = Explanation("beats misses", "positive", 0.9, [("beats", 0.9), ("misses", -0.6)]).to_html()
    assert "rgba(34,139,34,0.80)" in page and "rgba(205,38,38," in page and page[3:-4] in report
    with pytest.raises(FintuneError, match="type a text"):
        try_it(FintuneModel.load(text_run), " ", None)

    credit = tmp_path / "credit.csv"
    frame = credit_frame(300)
    frame.to_csv(credit, index=False)
    features = ["income", "debt_ratio", "purpose", "age"]
    config = write_config(tmp_path / "mlp.yaml", tiny_bert, credit, tmp_path / "runs" / "mlp",
                          data={"text_column": None, "feature_columns": features},
                          model={"backbone": str(tiny_bert), "kind": "mlp", "head_hidden": 16})
    model = FintuneModel.load(api.train(config, show_progress=False).run_dir)
    row = frame[features].iloc[:1].astype(str)  # the page's cells arrive as text
    probs, parts = try_it(model, None, row)
    assert set(probs) == {"bad", "good"} and {p.split(" = ")[0] for p, _ in parts} == set(features)


def test_messages_are_never_markup() -> None:
    from fintune.board.forms import error, ok

    assert error("column '<img src=x onerror=alert(1)>' not found") == (
        "<div class='error'>error: column &#x27;&lt;img src=x onerror=alert(1)&gt;&#x27; not found</div>")
    assert "<b>" not in ok("2 columns: <b>, label")


def test_try_it_marks_the_entities_of_a_tagger(tmp_path: Path, make_config) -> None:
    from fintune import api
    from fintune.board.trying import try_it
    from fintune.predictors import FintuneModel
    from tests.tagging.conftest import tagged_sentences, write_jsonl

    data = write_jsonl(tmp_path / "ner.jsonl", tagged_sentences(200))
    config = make_config("ner.yaml", data, task="token_classification",
                         data={"train": str(data), "tokens_column": "tokens", "label_column": "tags", "text_column": None},
                         train={"epochs": 6, "lr": 5e-3, "num_threads": 1})
    run = api.train(config, show_progress=False).run_dir
    summary, pieces = try_it(FintuneModel.load(run), "Acme bank beats hooli", None)
    assert summary == "Acme bank (ORG), hooli (LOC)"
    assert pieces == [("Acme bank", "ORG"), (" beats ", None), ("hooli", "LOC")]


@pytest.mark.parametrize("name", ["../outside", "/etc", "..", ".board", "a/b", "", "link_out"])
def test_run_names_stay_inside_the_runs_folder(tmp_path: Path, name: str) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link_out").symlink_to(tmp_path)
    with pytest.raises(FintuneError, match="run name"):
        run_folder(runs, name)
    assert run_folder(runs, "my_run") == runs / "my_run"


def test_the_board_answers_only_its_own_host_and_origin(tmp_path: Path) -> None:
    """DNS rebinding (a foreign Host), a POST from another local web page (a foreign Origin),
    and a board on a public interface without a password are all refused."""
    from fintune.board import launch

    port = free_port()
    demo = launch(tmp_path / "runs", port=port, block=False)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/config").status_code == 200
        rebound = httpx.get(f"{base}/config", headers={"Host": f"rebind.evil.example:{port}"})
        assert rebound.status_code == 421 and "DNS rebinding" in rebound.json()["error"]
        posted = httpx.post(f"{base}/gradio_api/queue/join", json={}, headers={"Host": f"rebind.evil.example:{port}"})
        assert posted.status_code == 421
        foreign = httpx.post(f"{base}/gradio_api/queue/join", json={}, headers={"Origin": "http://127.0.0.1:9999"})
        assert foreign.status_code == 403 and "another web page" in foreign.json()["error"]
        own = httpx.post(f"{base}/gradio_api/queue/join", json={}, headers={"Origin": base})
        assert own.status_code not in (403, 421)
    finally:
        demo.close()
    with pytest.raises(FintuneError, match="password"):
        launch(tmp_path / "runs", host="0.0.0.0", port=free_port(), block=False)


def test_wrong_passwords_are_limited(tmp_path: Path) -> None:
    from fintune.board import launch
    from fintune.board.guard import LOGIN_ATTEMPTS

    port = free_port()
    demo = launch(tmp_path / "runs", port=port, password="s3cret", block=False)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            codes = [client.post("/login", data={"username": "x", "password": f"guess{i}"}).status_code
                     for i in range(LOGIN_ATTEMPTS + 3)]
            assert codes[:LOGIN_ATTEMPTS] == [400] * LOGIN_ATTEMPTS and set(codes[LOGIN_ATTEMPTS:]) == {429}
            # Even the right password waits out the window: a guesser learns nothing from it.
            blocked = client.post("/login", data={"username": "x", "password": "s3cret"})
            assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    finally:
        demo.close()
