"""The word features of a classic feature-based CRF tagger: the word, its case and shape,
prefixes and suffixes, and the same for the two words either side (as in the
sklearn-crfsuite CoNLL tutorial, without part-of-speech tags).

They are what an uncased encoder misses in filings: capitals in headings and signature
blocks ("BANK OF AMERICA, N.A."), digits in section numbers, a word's spelling when the
encoder splits it into pieces.
"""

from __future__ import annotations

from typing import Any

NEIGHBOURS = (-2, -1, 1, 2)


def _shape(word: str) -> str:
    return "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word)


def _of(word: str, prefix: str) -> dict[str, Any]:
    return {f"{prefix}lower": word.lower(), f"{prefix}istitle": word.istitle(), f"{prefix}isupper": word.isupper(),
            f"{prefix}isdigit": word.isdigit(), f"{prefix}shape": _shape(word)[:6],
            f"{prefix}suf3": word[-3:].lower(), f"{prefix}pre3": word[:3].lower()}


def word_features(words: list[str], i: int) -> dict[str, Any]:
    """The features of word ``i`` of a sentence (strings are one-hot, booleans and numbers weights)."""
    feats: dict[str, Any] = {"bias": 1.0, **_of(words[i], ""), "suf2": words[i][-2:].lower(),
                             "len": min(len(words[i]), 10)}
    for offset in NEIGHBOURS:
        j = i + offset
        if 0 <= j < len(words):
            feats.update(_of(words[j], f"{offset:+d}:"))
        else:
            feats[f"{offset:+d}:pad"] = True
    return feats


def sentence_features(words: list[str]) -> list[dict[str, Any]]:
    """:func:`word_features` of every word."""
    return [word_features(words, i) for i in range(len(words))]
