"""GGUF export: the file transformers reads back answers like the merged model (Llama and Qwen2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fintune import api
from fintune.errors import FintuneError
from tests.conftest import sentiment_frame, write_config

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def bpe_model(folder: Path, arch: str) -> Path:
    """A tiny causal LM of ``arch`` with a byte-level BPE tokenizer trained here on the test sentences."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    frame = sentiment_frame(200)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(frame["text"]) + ["what is the sentiment ? positive negative neutral"],
                            vocab_size=400, min_frequency=1,
                            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", bos_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                  bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(LlamaConfig(**common)) if arch == "llama" else Qwen2ForCausalLM(Qwen2Config(**common))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def bpe_run(tmp_path: Path, arch: str) -> Path:
    folder = tmp_path / arch
    backbone = bpe_model(folder / "backbone", arch)
    frame = sentiment_frame(120)
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps({"instruction": "what is the sentiment ?", "input": t, "output": y}) + "\n"
                            for t, y in zip(frame["text"], frame["label"])))
    config = write_config(folder / "run.yaml", backbone, path, folder / "run", task="generation",
                          data={"train": str(path), "text_column": "input", "label_column": "output",
                                "instruction_column": "instruction"},
                          model={"backbone": str(backbone), "kind": "causal", "max_length": 64, "max_new_tokens": 4},
                          strategy={"name": "lora", "r": 8},
                          train={"epochs": 3, "batch_size": 16, "lr": 5e-3, "checkpoint_every": 0, "precision": "fp32"})
    return api.train(config, show_progress=False).run_dir


# Llama's q/k rows are permuted for llama.cpp, Qwen2's carry biases: each architecture in one type.
@pytest.mark.parametrize(("arch", "kind"), [("llama", "f16"), ("qwen2", "q8_0")])
def test_the_gguf_file_answers_like_the_merged_model(tmp_path, arch, kind) -> None:
    import gguf

    run = bpe_run(tmp_path, arch)
    out = api.export(run, format="gguf", quantize=kind)
    report = json.loads((out / "gguf_check.json").read_text())
    assert report["prompts"] >= 10 and report["equal_answers"] == report["prompts"], report
    # The weights themselves, not only the answers: F16 and Q8_0 round them, nothing more.
    assert report["same_token_ids"] and report["max_abs_logit_diff"] < (0.01 if kind == "f16" else 0.05), report
    reader = gguf.GGUFReader(str(out / f"model-{kind}.gguf"))
    fields = {name: field for name, field in reader.fields.items()}
    template = bytes(fields["tokenizer.chat_template"].parts[-1]).decode()
    assert template == CHATML and (out / "Modelfile").is_file()
    types = {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2}
    assert types == {kind.upper()}
    if arch == "qwen2":  # the hf export of the same run: the chat template and where to stop
        _check_hf_export(run)


def test_gguf_takes_generation_runs_only(tmp_path, tiny_llama, sentiment_csv) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_llama, sentiment_csv, tmp_path / "run",
                          model={"backbone": str(tiny_llama), "kind": "causal", "max_length": 48},
                          train={"epochs": 1, "checkpoint_every": 0, "precision": "fp32"})
    run = api.train(config, show_progress=False).run_dir
    with pytest.raises(FintuneError, match="GGUF files hold language models that generate"):
        api.export(run, format="gguf")


def _check_hf_export(run: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    out = api.export(run, format="hf")
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == CHATML
    config = GenerationConfig.from_pretrained(out)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in [config.eos_token_id] + list(
        config.eos_token_id if isinstance(config.eos_token_id, list) else [])
    assert config.max_new_tokens == 4
