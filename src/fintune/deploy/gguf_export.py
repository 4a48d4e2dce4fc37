"""``fintune export --format gguf``: a generation run as one GGUF file for llama.cpp and Ollama.

Written with the ``gguf`` package's writer (llama.cpp's own Python library) in the layout of
llama.cpp's ``convert_hf_to_gguf.py``: tensor names from gguf's name map, Llama's query and
key rows permuted into llama.cpp's rotary order (Qwen2's are not), norms and biases kept in
F32, matrices in F16 or Q8_0, and the tokenizer (byte-level BPE: Llama 3, Qwen, SmolLM) with
its merges, special tokens and chat template. The export is checked before it is kept: the
file is read back with transformers and must give the merged model's greedy answers on the
run's held-out prompts (a GGUF that answers worse than the model it came from is a known
failure of LLM export pipelines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from fintune.errors import FintuneError

GgufType = Literal["f16", "q8_0"]
# Hugging Face class -> llama.cpp architecture (and whether q/k rows are permuted for its rotary embedding).
ARCHITECTURES = {"LlamaForCausalLM": ("LLAMA", True), "Qwen2ForCausalLM": ("QWEN2", False)}
PRE_TOKENIZERS = {"qwen2": "qwen2", "llama": "default"}  # llama.cpp's pre-tokenizer names


@dataclass
class GgufCheck:
    """How the exported file answered against the merged model on the same prompts."""

    prompts: int
    equal_answers: int
    same_token_ids: bool = True  # the file's tokenizer reads every prompt into the same ids
    max_abs_logit_diff: float = 0.0  # next-token logits on the prompts: the rounding of the weights

    @property
    def passed(self) -> bool:
        return self.equal_answers == self.prompts and self.same_token_ids


def _closeness(reference: Any, exported: Any, prompts: Any, rows: int = 8) -> tuple[bool, float]:
    """Whether both tokenizers give the same prompt ids, and the largest next-token logit
    difference over the first ``rows`` prompts (answers can agree while weights are wrong)."""
    ours, theirs = reference.inputs(prompts)["input_ids"], exported.inputs(prompts)["input_ids"]
    largest = 0.0
    with torch.inference_mode():
        for ids in ours[:rows]:
            batch = torch.tensor([ids])
            diff = (reference.model(input_ids=batch).logits[0, -1].float()
                    - exported.model(input_ids=batch).logits[0, -1].float()).abs().max()
            largest = max(largest, float(diff))
    return ours == theirs, round(largest, 6)


def supported(lm: torch.nn.Module) -> tuple[Any, bool]:
    """The gguf architecture of ``lm`` and whether its q/k rows are permuted; an error otherwise."""
    import gguf

    name = type(lm).__name__
    if name not in ARCHITECTURES:
        raise FintuneError(f"GGUF export writes Llama and Qwen2 models (SmolLM2, Qwen2.5, Llama 3); this run's model "
                           f"is a {name}: export --format hf and convert it with llama.cpp's convert_hf_to_gguf.py")
    arch, permuted = ARCHITECTURES[name]
    return getattr(gguf.MODEL_ARCH, arch), permuted


def write_gguf(lm: torch.nn.Module, tokenizer: Any, chat_template: str | None, path: Path, kind: GgufType,
               name: str) -> Path:
    """Write ``lm`` (a plain, merged causal LM) and its tokenizer to ``path``."""
    import gguf

    arch, permuted = supported(lm)
    cfg = lm.config
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(name)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(_rope_theta(cfg)))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if kind == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    _add_tokenizer(writer, tokenizer, cfg, chat_template)
    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for key, tensor in lm.state_dict().items():
        if tied and key == "lm_head.weight":
            continue  # llama.cpp reads the embeddings as the output layer when output.weight is absent
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise FintuneError(f"GGUF export: no llama.cpp name for the tensor {key}")
        data = tensor.detach().float().cpu().numpy()
        if permuted and (key.endswith("self_attn.q_proj.weight") or key.endswith("self_attn.k_proj.weight")):
            heads = cfg.num_attention_heads if "q_proj" in key else cfg.num_key_value_heads
            data = _permute(data, heads)
        _add_tensor(writer, target, data, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _rope_theta(cfg: Any) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return params.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary order for Llama's q/k rows (the inverse of transformers' reverse permute)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _add_tensor(writer: Any, name: str, data: np.ndarray, kind: GgufType) -> None:
    import gguf

    if data.ndim < 2:  # norms and biases stay F32, as llama.cpp's converter keeps them
        writer.add_tensor(name, data.astype(np.float32))
    elif kind == "f16":
        writer.add_tensor(name, data.astype(np.float16))
    else:
        quantized = gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def _add_tokenizer(writer: Any, tokenizer: Any, cfg: Any, chat_template: str | None) -> None:
    """A byte-level BPE tokenizer as llama.cpp's ``gpt2`` tokenizer model."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(state.get("pre_tokenizer")):
        raise FintuneError("GGUF export writes byte-level BPE tokenizers (Llama 3, Qwen, SmolLM); this run's "
                           "tokenizer is not one: export --format hf instead")
    vocab = tokenizer.get_vocab()
    size = max(cfg.vocab_size, len(vocab))
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [5] * size  # unused, unless the tokenizer has the id
    added = {t.content: t.special for t in tokenizer.added_tokens_decoder.values()}
    for token, index in vocab.items():
        tokens[index] = token
        types[index] = (3 if added[token] else 4) if token in added else 1
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZERS.get(cfg.model_type, "default"))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                             (writer.add_eos_token_id, tokenizer.eos_token_id),
                             (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if token_id is not None:
            setter(token_id)
    writer.add_add_bos_token(bool(getattr(tokenizer, "add_bos_token", False)))
    if chat_template:
        writer.add_chat_template(chat_template)


REPORT = "gguf_check.json"
CHECK_PROMPTS = 32


def export_gguf(run: Path, output: Path, kind: GgufType, *, force: bool = False, data: str | Path | None = None,
                rows: int | None = None) -> GgufCheck:
    """Write ``output/model-<kind>.gguf`` (and an Ollama ``Modelfile``), read it back with
    transformers and compare its greedy answers with the merged model's on held-out prompts;
    kept only when they are all equal, or with ``force``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fintune.deploy.export import check_examples
    from fintune.files import atomic_folder
    from fintune.predictors import FintuneModel

    if kind not in ("f16", "q8_0"):
        raise FintuneError(f"unknown GGUF type '{kind}'; use f16 or q8_0")
    reference = FintuneModel.load(run)
    if reference.chats is not None:
        raise FintuneError(f"GGUF files hold language models that generate answers; {run} is a {reference.task} run "
                           f"({reference.chats}). Export it with --format hf or onnx")
    merged = reference.merged()
    supported(merged.model)
    prompts = check_examples(run, reference, data, rows or CHECK_PROMPTS)
    name = f"model-{kind}.gguf"
    prompt = merged.inputs.prompt
    template = prompt.chat.template if prompt.chat is not None else None
    with atomic_folder(output, "GGUF export folder", marker=REPORT) as tmp:
        write_gguf(merged.model, merged.tokenizer, template, tmp / name, kind, Path(run).name)
        lm = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=name)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        exported = type(merged)(lm.eval(), tokenizer, merged.meta)
        expected, answers = merged.generate(prompts), exported.generate(prompts)
        check = GgufCheck(len(prompts), sum(a == b for a, b in zip(expected, answers)),
                          *_closeness(merged, exported, prompts))
        differing = [{"input": t, "model": a, "gguf": b} for t, a, b in zip(prompts.texts, expected, answers) if a != b]
        report = {"format": "gguf", "type": kind, "file": name, "prompts": check.prompts,
                  "equal_answers": check.equal_answers, "same_token_ids": check.same_token_ids,
                  "max_abs_logit_diff": check.max_abs_logit_diff, "forced": force and not check.passed,
                  "size_mb": round((tmp / name).stat().st_size / 2**20, 2), "differing": differing[:10]}
        (tmp / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / "Modelfile").write_text(f"# ollama create NAME -f Modelfile\nFROM ./{name}\nPARAMETER temperature 0\n",
                                       encoding="utf-8")
        if not check.passed and not force:
            raise FintuneError(f"the GGUF file answers {check.prompts - check.equal_answers} of {check.prompts} "
                               f"held-out prompts differently from the merged model (first: {differing[0]}); "
                               "nothing was written. Export --type f16, or pass --force to keep it anyway")
    from fintune.console import console

    console.print(f"GGUF ({kind}, {report['size_mb']} MB): {check.equal_answers} of {check.prompts} held-out answers "
                  f"equal the merged model's; written to [bold]{output / name}[/]", soft_wrap=True)
    return check
