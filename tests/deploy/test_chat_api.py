"""Generation runs answer conversations: `fintune chat`, and /v1/chat/completions with OpenAI's client."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fintune.cli import app
from fintune.errors import FintuneError
from fintune.models.generation import Sampling
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config
from tests.deploy.conftest import API_KEY, start_server

QUESTION = [{"role": "user", "content": "what is the sentiment of this news ? acme beats the quarter"}]


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory: pytest.TempPathFactory, tiny_chat_llama: Path) -> Path:
    from fintune import api

    folder = tmp_path_factory.mktemp("deploy_chat")
    frame = sentiment_frame(80)
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps({"instruction": "what is the sentiment of this news ?", "input": t,
                                        "output": y}) + "\n" for t, y in zip(frame["text"], frame["label"])))
    config = write_config(folder / "run.yaml", tiny_chat_llama, path, folder / "run", task="generation",
                          data={"train": str(path), "text_column": "input", "label_column": "output",
                                "instruction_column": "instruction"},
                          model={"backbone": str(tiny_chat_llama), "kind": "causal", "max_length": 48,
                                 "max_new_tokens": 4},
                          train={"epochs": 3, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"})
    api.train(config, show_progress=False)
    return folder / "run"


def test_a_conversation_streams_the_same_answer_as_a_whole(chat_run) -> None:
    model = FintuneModel.load(chat_run)
    sampling = Sampling(max_new_tokens=4)
    pieces = list(model.chat_stream(QUESTION, sampling))
    assert "".join(pieces).strip() == model.chat(QUESTION, sampling)
    # One user turn is prompted exactly as `fintune predict` prompts that text.
    assert model.chat(QUESTION, sampling) == model.generate([QUESTION[0]["content"]])[0]
    longer = QUESTION + [{"role": "assistant", "content": "positive"}, {"role": "user", "content": "and globex ?"}]
    assert isinstance(model.chat(longer, sampling), str)
    with pytest.raises(FintuneError, match="last message must be the user's"):
        model.chat(QUESTION + [{"role": "assistant", "content": "x"}])


def test_fintune_chat_keeps_the_conversation(chat_run) -> None:
    result = CliRunner().invoke(app, ["chat", str(chat_run), "--max-new-tokens", "3"],
                                input="acme beats the quarter\n/reset\nglobex misses\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "(conversation cleared)" in result.output


def test_chat_refuses_a_classifier(text_run: Path) -> None:
    result = CliRunner().invoke(app, ["chat", str(text_run)])
    assert result.exit_code == 2 and "only instruction-tuned causal LMs" in result.output


def test_the_openai_client_talks_to_the_server(chat_run, tmp_path) -> None:
    openai = pytest.importorskip("openai")
    log = tmp_path / "log.sqlite"
    server = start_server(chat_run, tmp_path, max_new_tokens=8, log={"path": str(log)})
    try:
        expected = FintuneModel.load(chat_run).chat(QUESTION, Sampling(max_new_tokens=4))
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused",
                               default_headers={"X-API-Key": API_KEY}, max_retries=0)
        whole = client.chat.completions.create(model="run", messages=QUESTION, max_tokens=4)
        assert whole.choices[0].message.content == expected and whole.choices[0].message.role == "assistant"
        assert whole.usage.completion_tokens >= 1 and whole.choices[0].finish_reason in ("stop", "length")
        chunks = list(client.chat.completions.create(model="run", messages=QUESTION, max_tokens=4, stream=True))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed.strip() == expected and chunks[-1].choices[0].finish_reason in ("stop", "length")
        assert [m.id for m in client.models.list()] == ["run"]
        # The same key, limits and error shape as /v1/predict.
        stranger = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(model="run", messages=QUESTION)
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.chat.completions.create(model="run", messages=QUESTION, max_tokens=9)
        assert refused.value.response.json()["limit"] == "max_new_tokens"
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.chat.completions.create(model="run", messages=[{"role": "user", "content": "x" * 301}])
        assert refused.value.response.json()["limit"] == "max_text_chars"
        # /v1/predict answers with probabilities, which a generation run has none of.
        import httpx
        assert httpx.post(server.url + "/v1/predict", json={"texts": ["a"]},
                          headers={"X-API-Key": API_KEY}).status_code == 404
        deadline = time.monotonic() + 10
        rows: list = []
        while len(rows) < 2 and time.monotonic() < deadline:
            with sqlite3.connect(log) as db:
                rows = db.execute("SELECT input_hash, text FROM predictions").fetchall()
            time.sleep(0.1)
        assert len(rows) == 2 and all(len(h) == 64 and text is None for h, text in rows)
    finally:
        server.stop()
