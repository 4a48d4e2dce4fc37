"""Tokenizer coverage: how much of a text a backbone's vocabulary reads as unknown.

An English encoder reads Chinese as ``[UNK]`` tokens: training runs, learns nothing from the
text, and nothing says why. The data check and training measure the share of unknown tokens
and of the characters behind them, per split, and warn above :data:`WARN_SHARE`, naming the
script that is missing and a backbone that covers it. Byte-level tokenizers (Qwen2.5, GPT-2,
Llama 3) have no unknown token: their share is 0 by construction.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any

WARN_SHARE = 0.02  # above 2% of the tokens unknown, the model misses a visible part of the text
MULTILINGUAL = "qwen0.5b"  # the catalogue's backbone whose byte-level vocabulary reads every script


def measure(tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    """Unknown tokens and the characters they stand for, among ``texts``, and the scripts of
    those characters (commonest first)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    total_chars = sum(len(t) for t in texts)
    if unk is None or not texts:
        return {"unknown_token_share": 0.0, "unknown_char_share": 0.0, "tokens": 0, "scripts": []}
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(texts, truncation=False, verbose=False, add_special_tokens=False,
                    return_offsets_mapping=fast)
    tokens = unknown = unknown_chars = 0
    scripts: Counter[str] = Counter()
    for i, ids in enumerate(enc["input_ids"]):
        tokens += len(ids)
        spans = enc["offset_mapping"][i] if fast else [None] * len(ids)
        for token, span in zip(ids, spans):
            if token != unk:
                continue
            unknown += 1
            if span is not None:
                piece = texts[i][span[0]:span[1]]
                unknown_chars += len(piece)
                scripts.update(script_of(c) for c in piece if not c.isspace())
    return {"unknown_token_share": round(unknown / max(tokens, 1), 4),
            "unknown_char_share": round(unknown_chars / max(total_chars, 1), 4) if fast else None,
            "tokens": tokens, "scripts": [name for name, _ in scripts.most_common(3)]}


def script_of(char: str) -> str:
    """The script a character belongs to, by the first word of its Unicode name (CJK, HANGUL,
    ARABIC, CYRILLIC, LATIN ...); symbols without a name are OTHER."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "OTHER"


def coverage_warning(coverage: dict[str, Any] | None, backbone: str | None, column: str | None) -> str | None:
    """The line to print when the training split's text is not covered (None when it is)."""
    if not coverage or coverage.get("unknown_token_share", 0.0) <= WARN_SHARE:
        return None
    chars = coverage.get("unknown_char_share")
    scripts = coverage.get("scripts") or []
    what = f", mostly {scripts[0]} characters" if scripts else ""
    chars_text = f" ({chars:.0%} of its characters{what})" if chars is not None else what
    return (f"{coverage['unknown_token_share']:.0%} of the training text's tokens{chars_text} are unknown to "
            f"backbone {backbone or '?'}{f' in data.text_column {column}' if column else ''}: the model reads them "
            f"as one unknown token and cannot learn from them. Use a backbone whose vocabulary covers this text, "
            f"e.g. model.backbone: {MULTILINGUAL} with model.kind: causal and model.head: classifier (Qwen2.5's "
            "vocabulary reads every script), or model.kind: bow, which reads the characters themselves")
