"""Which rows a model reads only in part: encoders, pairs, label-word prompts, generation prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from fintune.data import Examples
from fintune.models.inference import CUT, encode

LONG = " ".join(["revenue grew in every segment"] * 20)


def test_encode_flags_exactly_the_rows_it_cuts(tiny_bert: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    exact = " ".join(["acme"] * 30)  # fills max_length to the token without being cut
    n = len(tokenizer(exact)["input_ids"])
    out = encode(tokenizer, ["short", LONG, exact], n)
    assert out[CUT] == [False, True, False]
    assert [len(ids) for ids in out["input_ids"]][1:] == [n, n]
    paired = encode(tokenizer, ["short", LONG], 16, pairs=["acme", "acme"])
    assert paired[CUT] == [False, True]


def test_prompted_causal_models_flag_their_cut_texts(tiny_llama: Path) -> None:
    from fintune.config import model_config
    from fintune.models.backbones import generation_format
    from fintune.models.inference import Inputs

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    fmt = generation_format(model_config(backbone=str(tiny_llama), kind="causal"), tokenizer, False)
    flags = Inputs.of_prompt(tokenizer, 48, fmt).cut(Examples(["acme beats", LONG], None, None, "t"))
    assert isinstance(flags, np.ndarray) and list(flags) == [False, True]
