"""Chat templates: prompts wrapped as the instruct model saw them, loss on the assistant's tokens only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from fintune import api
from fintune.config import model_config
from fintune.data import Examples
from fintune.models.backbones import generation_format, prompt_format
from fintune.models.chat import PLAIN_TEMPLATE, ChatFormat, chat_template_of, encode_conversation
from fintune.predictors import FintuneModel
from tests.conftest import sentiment_frame, write_config


def hf_assistant_mask(tokenizer, messages) -> tuple[list[int], list[int]]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return out["input_ids"], out["assistant_masks"]


def test_the_setting_picks_the_template(tiny_chat_llama, tiny_llama, tmp_path) -> None:
    chat_tok, raw_tok = AutoTokenizer.from_pretrained(tiny_chat_llama), AutoTokenizer.from_pretrained(tiny_llama)
    assert chat_template_of(chat_tok, "auto") == chat_tok.chat_template
    assert chat_template_of(chat_tok, "none") is None and chat_template_of(raw_tok, "auto") is None
    path = tmp_path / "plain.jinja"
    path.write_text(PLAIN_TEMPLATE)
    assert chat_template_of(raw_tok, str(path)) == PLAIN_TEMPLATE


def test_label_word_prompts_are_the_templates_rendering(tiny_chat_llama) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_llama)
    prompt = prompt_format(model_config(backbone=str(tiny_chat_llama), kind="causal", system_prompt="classify"),
                           tokenizer, ["negative", "neutral", "positive"])
    assert prompt.chat is not None
    ids = prompt.encode(Examples(["acme beats the quarter"], None, None, "t"), 64)["input_ids"][0]
    user = prompt.template.replace("{choices}", "negative, neutral, positive").replace("{text}", "acme beats the quarter")
    expected = tokenizer.apply_chat_template([{"role": "system", "content": "classify"},
                                              {"role": "user", "content": user}],
                                             add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert ids == expected
    # Each label word opens the assistant's turn: no leading space.
    assert prompt.label_ids == [tokenizer("negative", add_special_tokens=False)["input_ids"],
                                tokenizer("neutral", add_special_tokens=False)["input_ids"],
                                tokenizer("positive", add_special_tokens=False)["input_ids"]]


def test_instruction_records_learn_exactly_the_assistants_tokens(tiny_chat_llama) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_llama)
    fmt = generation_format(model_config(backbone=str(tiny_chat_llama), kind="causal"), tokenizer, True).with_answers()
    examples = Examples(["acme beats the quarter", "globex misses"], np.array(["positive", "very bad"], dtype=object),
                        None, "t", parts={"instructions": ["what is the sentiment ?", "classify the news"]})
    encoded = fmt.encode(examples, 64)
    for i in range(2):
        user = f"{examples.instructions[i]}\n\n{examples.texts[i]}"
        ids, mask = hf_assistant_mask(tokenizer, [{"role": "user", "content": user},
                                                  {"role": "assistant", "content": str(examples.labels[i])}])
        assert encoded["input_ids"][i] == ids
        start = encoded["answer_start"][i]
        assert [int(j >= start) for j in range(len(ids))] == mask
    # Generation stops at the turn's closing token as well as at end-of-sequence.
    assert tokenizer.convert_tokens_to_ids("<|end|>") in fmt.stop_ids


def test_a_multi_turn_conversation_masks_every_answer_and_nothing_else(tiny_chat_llama) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_llama)
    messages = [{"role": "system", "content": "classify the news"},
                {"role": "user", "content": "acme beats the quarter"}, {"role": "assistant", "content": "positive"},
                {"role": "user", "content": "and globex misses ?"}, {"role": "assistant", "content": "very bad news"}]
    ids, mask = encode_conversation(ChatFormat(tokenizer, tokenizer.chat_template), messages)
    assert (ids, mask) == hf_assistant_mask(tokenizer, messages)
    assert tokenizer.decode([t for t, m in zip(ids, mask) if m]).split() == ["positive", "<|end|>", "very", "bad",
                                                                            "news", "<|end|>"]


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_a_chat_run_reloads_with_its_template(tmp_path, tiny_chat_llama, sentiment_csv, task) -> None:
    frame = sentiment_frame(60)
    data: dict = {}
    if task == "generation":
        path = tmp_path / "records.jsonl"
        path.write_text("".join(json.dumps({"instruction": "what is the sentiment ?", "input": t, "output": y}) + "\n"
                                for t, y in zip(frame["text"], frame["label"])))
        data = {"train": str(path), "text_column": "input", "label_column": "output",
                "instruction_column": "instruction"}
    config = write_config(tmp_path / "chat.yaml", tiny_chat_llama, sentiment_csv, tmp_path / "runs" / task, task=task,
                          data=data, model={"backbone": str(tiny_chat_llama), "kind": "causal", "max_length": 48,
                                            "max_new_tokens": 3, "system_prompt": "you classify news"},
                          train={"epochs": 2, "batch_size": 16, "lr": 3e-3, "checkpoint_every": 0, "precision": "fp32"})
    run = api.train(config, show_progress=False).run_dir
    meta = json.loads((run / "model" / "fintune.json").read_text())
    assert meta["prompt"]["chat_template"] == AutoTokenizer.from_pretrained(tiny_chat_llama).chat_template
    assert meta["prompt"]["system_prompt"] == "you classify news"
    model = FintuneModel.load(run)
    assert model.inputs.prompt.chat is not None and model.inputs.prompt.chat.system == "you classify news"
    assert len(model.predict(frame["text"].tolist()[:4])) == 4
