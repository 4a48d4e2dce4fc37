"""Instruction tuning of causal LMs: FinGPT records, answer-only loss, generation for predict."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import numpy as np
import pytest
import torch

from fintune import api
from fintune.data import Examples
from fintune.errors import DataError, FintuneError
from fintune.predictors import FintuneModel
from fintune.models.generation import AnswerLoss, GenerationFormat
from tests.conftest import sentiment_frame, write_config

SENTIMENT = "what is the sentiment of this news ?"
STOCK = "what is the stock ?"


def instruction_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Two tasks on the same inputs: the answer depends on the instruction, not the input alone."""
    rows = []
    for text, label in zip(*sentiment_frame(n, seed)[["text", "label"]].T.values):
        rows.append({"instruction": SENTIMENT, "input": text, "output": label})
        rows.append({"instruction": STOCK, "input": text, "output": text.split()[0]})
    random.Random(seed).shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def generation_config(tmp_path: Path, llama: Path, name: str, strategy: dict, train: dict | None = None) -> Path:
    data = write_jsonl(tmp_path / "instructions.jsonl", instruction_records(300))
    return write_config(
        tmp_path / f"{name}.yaml", llama, data, tmp_path / "runs" / name, task="generation",
        data={"train": str(data), "text_column": "input", "label_column": "output", "instruction_column": "instruction"},
        model={"backbone": str(llama), "kind": "causal", "max_length": 48, "max_new_tokens": 4},
        strategy=strategy, train={"epochs": 4, "lr": 3e-3, **(train or {})})


@pytest.mark.parametrize(("name", "strategy", "train"), [
    ("full", {"name": "full"}, {}),
    ("lora", {"name": "lora", "r": 8, "modules_to_save": ["lm_head"]}, {"lr": 1e-2}),
])
def test_instruction_tuning_learns_generates_and_reloads(tmp_path, tiny_llama, name, strategy, train) -> None:
    run = api.train(generation_config(tmp_path, tiny_llama, name, strategy, train), show_progress=False).run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert {"exact_match", "token_f1", "accuracy", "weighted_f1", "loss"} <= set(test)
    losses = [json.loads(line)["validation"]["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    if name == "full":
        assert losses[-1] < 0.7 * losses[0]
        # Both tasks answered from the same inputs: the instruction decides the answer.
        assert test["exact_match"] >= 0.6, test
    else:
        # Adapters on a random 2-layer LM learn slowly (see test_causal.py); the loss still falls.
        assert losses[-1] < 0.9 * losses[0]

    # The saved predictions are what the reloaded model generates.
    model = FintuneModel.load(run)
    assert model.is_adapter == (name == "lora")
    saved = [json.loads(line) for line in (run / "eval" / "test" / "predictions.jsonl").read_text().splitlines()]
    examples = Examples([r["input"] for r in saved], None, None, "test", parts={"instructions": [r["instruction"] for r in saved]})
    assert model.generate(examples) == [r["answer"] for r in saved]
    assert test["exact_match"] == pytest.approx(sum(r["exact"] for r in saved) / len(saved))
    assert (run / "eval" / "test" / "report.md").read_text().startswith("# Generation")
    assert "text-generation" in (run / "model" / "README.md").read_text()


def test_predict_and_evaluate_generate_answers(tmp_path, tiny_llama) -> None:
    run = api.train(generation_config(tmp_path, tiny_llama, "full", {"name": "full"}), show_progress=False).run_dir
    records = instruction_records(20, seed=9)
    unlabeled = write_jsonl(tmp_path / "new.jsonl", [{k: r[k] for k in ("instruction", "input")} for r in records])
    out = api.predict(run, unlabeled, tmp_path / "out.csv", show_progress=False)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["instruction", "input", "generated"] and len(frame) == 40
    sentiment = frame[frame.instruction == SENTIMENT]
    assert set(sentiment.generated) <= {"positive", "negative", "neutral"}
    stock = frame[frame.instruction == STOCK]
    assert (stock.generated == stock.input.str.split().str[0]).mean() >= 0.8

    metrics = api.evaluate(run, write_jsonl(tmp_path / "labeled.jsonl", records), output=tmp_path / "eval")
    assert metrics["n"] == 40 and metrics["exact_match"] >= 0.6
    assert (tmp_path / "eval" / "predictions.jsonl").exists()



def test_what_needs_probabilities_refuses_a_generation_run_and_the_rest_takes_it(tmp_path, tiny_llama) -> None:
    from fintune import trust
    from fintune.config import ServeConfig
    from fintune.deploy.server import build_app
    from fintune.report import write_report

    run = api.train(generation_config(tmp_path, tiny_llama, "full", {"name": "full"}, {"epochs": 1}),
                    show_progress=False).run_dir
    refusals = [
        (lambda: FintuneModel.load(run).outputs(["acme beats"]), "generation run"),
        (lambda: api.export(run, format="onnx"), "causal"),
        (lambda: trust.fairness(run, ["instruction"]), "binary classification"),
        (lambda: trust.robustness(run), "classification"),
        (lambda: trust.explain_text(run, "acme beats"), "not for causal LMs"),
    ]
    for call, message in refusals:
        with pytest.raises(FintuneError, match=message):
            call()
    # What takes generated answers: the server's chat API (not /v1/predict) and the report.
    paths = set(build_app(run, ServeConfig()).openapi()["paths"])  # routers included lazily: ask the schema
    assert "/v1/chat/completions" in paths and "/v1/predict" not in paths
    page = write_report(run).read_text(encoding="utf-8")
    assert "worst answers" in page and "refusals" in page and "answer lengths" in page
    merged = api.export(run, format="hf")
    news = Examples(["acme beats", "globex misses"], None, None, "test", parts={"instructions": [SENTIMENT, STOCK]})
    assert FintuneModel.load(merged).generate(news) == FintuneModel.load(run).generate(news)


@pytest.fixture()
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_llama)


def test_answer_tokens_alone_carry_the_loss(tiny_llama, tokenizer) -> None:
    """Against a plain language-model loss with the prompt's labels masked out, record by record."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    fmt = GenerationFormat(tokenizer, "Instruction: {instruction}\nInput: {text}\nAnswer:").with_answers()
    examples = Examples(["acme beats the quarter", "globex misses"], pd.Series(["positive", "very bad"]).to_numpy(),
                        None, "test", parts={"instructions": [SENTIMENT, STOCK]})
    encoded = fmt.encode(examples, 48)
    assert all(ids[-1] == tokenizer.eos_token_id for ids in encoded["input_ids"])
    width = max(map(len, encoded["input_ids"]))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in encoded["input_ids"]])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in encoded["input_ids"]])
    with torch.no_grad():
        losses = AnswerLoss(encoded).per_record(lm(input_ids=ids, attention_mask=mask).logits, [0, 1])
        for i, (row, start) in enumerate(zip(encoded["input_ids"], encoded["answer_start"])):
            labels = torch.tensor([[-100] * start + row[start:]])
            assert losses[i].item() == pytest.approx(lm(torch.tensor([row]), labels=labels).loss.item(), abs=1e-5)
    # "very bad": two words and end-of-sequence; the prompt ends with "answer :".
    assert len(encoded["input_ids"][1]) - encoded["answer_start"][1] == 3
    assert tokenizer.decode(encoded["input_ids"][1][encoded["answer_start"][1] - 2:encoded["answer_start"][1]]) \
        .replace(" ", "") == "answer:"


def test_long_input_keeps_instruction_prompt_cue_and_answer(tokenizer) -> None:
    fmt = GenerationFormat(tokenizer, "Instruction: {instruction}\nInput: {text}\nAnswer:")
    examples = Examples(["acme " * 200], pd.Series(["positive"]).to_numpy(), None, "test", parts={"instructions": [SENTIMENT]})
    prompt = fmt.encode(examples, 40)["input_ids"][0]
    assert len(prompt) == 40 and tokenizer.decode(prompt[-2:]).replace(" ", "") == "answer:"
    assert tokenizer.decode(prompt).startswith("instruction : what is the sentiment")
    trained = fmt.with_answers().encode(examples, 40)
    assert len(trained["input_ids"][0]) == 40
    assert trained["input_ids"][0][trained["answer_start"][0]:] == tokenizer(" positive")["input_ids"] + [3]


def test_prompt_with_instruction_needs_the_column(tokenizer) -> None:
    fmt = GenerationFormat(tokenizer, "Instruction: {instruction}\nInput: {text}\nAnswer:")
    labelled = Examples(["acme beats"], np.array(["positive"], dtype=object), None, "in.jsonl")
    with pytest.raises(DataError, match="data.instruction_column"):
        fmt.with_answers().encode(labelled, 40)
    # A plain text to answer (predict, chat) carries its question itself: the instruction is empty.
    plain = fmt.encode(Examples(["acme beats"], None, None, "input"), 40)["input_ids"][0]
    assert plain == tokenizer("Instruction: \nInput: acme beats\nAnswer:")["input_ids"]
    with pytest.raises(ValueError, match="must contain {text}"):
        GenerationFormat(tokenizer, "Instruction: {instruction}")


def test_instruction_records_are_validated_with_row_numbers(tmp_path, tiny_llama) -> None:
    rows = instruction_records(30)
    rows[4] = {**rows[4], "output": None}
    config = generation_config(tmp_path, tiny_llama, "bad", {"name": "full"})
    cfg = api.load_run_config(config, [f"data.train={write_jsonl(tmp_path / 'bad.jsonl', rows)}"])
    with pytest.raises(DataError, match="row 5.*output"):
        api.data_check(cfg, output=tmp_path / "check.json")
    del rows[4]["instruction"]
    rows[4]["output"] = "positive"
    cfg = api.load_run_config(config, [f"data.train={write_jsonl(tmp_path / 'bad.jsonl', rows)}"])
    with pytest.raises(DataError, match="row 5.*instruction"):
        api.data_check(cfg, output=tmp_path / "check.json")


def test_data_check_reports_answers_and_keeps_one_input_under_two_instructions(tmp_path, tiny_llama) -> None:
    report = api.data_check(generation_config(tmp_path, tiny_llama, "check", {"name": "full"}),
                            output=tmp_path / "check.json")
    assert sum(report["rows"].values()) == 600 and report["conflicts"]["count"] == 0
    answers = report["answers"]["train"]
    assert answers["distinct"] == 11 and answers["max_words"] == 1
    assert report["split"]["method"] == "random" and "generation labels were split at random" in report["split"]["note"]
