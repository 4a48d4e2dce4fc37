"""Chat data: OpenAI messages and ShareGPT conversations, multi-turn, every assistant turn learned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fintune import api
from fintune.config import DataConfig
from fintune.data.columns import conversations_of
from fintune.errors import DataError
from fintune.models.generation import AnswerLoss
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def conversations(n: int, sharegpt: bool = False) -> list[list[dict]]:
    frame = sentiment_frame(n)
    out = []
    for i, (text, label) in enumerate(zip(frame["text"], frame["label"])):
        turns = [{"role": "user", "content": f"what is the sentiment of this news ? {text}"},
                 {"role": "assistant", "content": label}]
        if i % 2:  # every other record goes on for a second exchange
            turns += [{"role": "user", "content": "and the text ?"}, {"role": "assistant", "content": text}]
        if sharegpt:
            turns = [{"from": {"user": "human", "assistant": "gpt"}[t["role"]], "value": t["content"]} for t in turns]
        out.append(turns)
    return out


def test_sharegpt_turns_read_as_openai_roles() -> None:
    cfg = DataConfig(train="x", text_column=None, messages_column="conversations")
    frame = pd.DataFrame({"conversations": [[{"from": "system", "value": "be brief"},
                                             {"from": "human", "value": " hi  there "}, {"from": "gpt", "value": "ok"}]]})
    assert conversations_of(frame, cfg, "f") == [[{"role": "system", "content": "be brief"},
                                                  {"role": "user", "content": "hi there"},
                                                  {"role": "assistant", "content": "ok"}]]
    with pytest.raises(DataError, match="end with the assistant's"):
        conversations_of(pd.DataFrame({"conversations": [[{"from": "human", "value": "hi"}]]}), cfg, "f")
    with pytest.raises(DataError, match="row 1.*a turn needs a role"):
        conversations_of(pd.DataFrame({"conversations": [[{"speaker": "x", "value": "hi"}]]}), cfg, "f")


@pytest.mark.parametrize("sharegpt", [False, True])
def test_a_conversation_run_learns_every_answer_and_answers_tables(tmp_path, tiny_chat_llama, sharegpt) -> None:
    column = "conversations" if sharegpt else "messages"
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps({column: c}) + "\n" for c in conversations(60, sharegpt)))
    config = write_config(tmp_path / "chat.yaml", tiny_chat_llama, path, tmp_path / "runs" / column, task="generation",
                          data={"train": str(path), "text_column": None, "messages_column": column},
                          model={"backbone": str(tiny_chat_llama), "kind": "causal", "max_length": 64,
                                 "max_new_tokens": 3},
                          train={"epochs": 2, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"})
    cfg = api.load_run_config(config)
    from fintune.data import prepare_data
    from fintune.models.backbones import generation_format, load_tokenizer
    from fintune.models.inference import Inputs

    data = prepare_data(cfg.data, cfg.task, cfg.seed)
    two_turns = next(i for i, m in enumerate(data.train.messages) if len(m) == 3)
    tokenizer = load_tokenizer(cfg.model)
    fmt = generation_format(cfg.model, tokenizer, False).with_answers()
    encoded = Inputs.of_prompt(tokenizer, 64, fmt)(data.train)
    learned = [t for t, m in zip(encoded["input_ids"][two_turns], encoded["loss_mask"][two_turns]) if m]
    first, last = data.train.messages[two_turns][1]["content"], str(data.train.labels[two_turns])
    assert tokenizer.decode(learned).split() == [*first.split(), "<|end|>", *last.split(), "<|end|>"]
    # The loss reads the mask: learned tokens only, none of the user's.
    loss = AnswerLoss(encoded)
    token_loss, counts = loss.token_losses(__import__("torch").zeros(1, 64, len(tokenizer)), np.array([two_turns]))
    assert int(counts[0]) == len(learned)

    run = api.train(config, show_progress=False).run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation"]["n"] > 0
    model = FintuneModel.load(run)
    questions = pd.DataFrame({column: [c[:1] for c in conversations(4, sharegpt)]})
    answers = model.predict(questions)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
