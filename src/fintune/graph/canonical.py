"""Canonical entity names: one key for "Deutsche Bank AG", "DEUTSCHE BANK" and "Deutsche Bank's".

The key is what nodes are joined on, so it errs on the side of merging spellings of one
name and never guesses across different words:

1. NFKC (full-width letters, ligatures and non-breaking spaces become plain ones);
   trademark signs are dropped first, since NFKC would turn ``™`` into the letters ``TM``.
2. A possessive ``'s`` (or ``’s``) at the end of a word is dropped: "Deutsche Bank's".
3. Dashes, slashes and underscores become spaces ("Coca-Cola" = "Coca Cola"); every other
   punctuation mark or symbol is removed ("J.P. Morgan" = "JP Morgan", "S.A." = "SA").
4. Case is folded and whitespace collapsed; runs of single letters are joined
   ("J. P. Morgan" = "J.P. Morgan", "S & P" = "S&P").
5. A leading "the" is dropped, then legal-form suffixes at the end, repeatedly
   ("Co., Ltd." goes in two steps): see :data:`LEGAL_SUFFIXES`.

"Group" and "Holdings" are kept: they often name a different legal entity than the brand
(a holding company versus its bank) and the words are part of many names, so
"The Goldman Sachs Group, Inc." becomes ``goldman sachs group``, not ``goldman sachs``.
A name that is empty after all this (a bare "Inc." or "The") has no key and is skipped.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Legal forms, as they read after punctuation is removed ("N.A." -> "na", "S.p.A." -> "spa").
# Only whole trailing words are dropped, so "Coinbase" or "Sachs" are never touched.
LEGAL_SUFFIXES: frozenset[str] = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "cos", "company", "companies",
    "plc", "ltd", "limited", "llc", "llp", "lp", "na",
    "ag", "sa", "nv", "bv", "se", "gmbh", "kgaa", "spa", "srl", "sarl", "ab", "asa", "oyj",
    "pte", "pty",
})

_MARKS = dict.fromkeys(map(ord, "™®©℠"), None)
_POSSESSIVE = re.compile(r"(?<=\w)['’ʼ]s\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=1 << 16)  # a corpus names the same few thousand entities over and over
def canonical_key(name: str) -> str:
    """The key nodes are joined on: folded case, no punctuation, legal suffixes and a leading
    "the" dropped (see the module docstring). ``""`` when nothing is left."""
    text = _POSSESSIVE.sub("", unicodedata.normalize("NFKC", name.translate(_MARKS)))
    text = "".join(_fold_char(ch) for ch in text).casefold()
    words = _join_initials(text.split())
    if words and words[0] == "the":
        words = words[1:]
    while words and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def surface_form(text: str) -> str:
    """An entity's text as it is shown: NFKC, single spaces, no trailing possessive or stray
    quotes and commas around it. Different surface forms of one key become its aliases."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    text = re.sub(r"['’ʼ]s$", "", text, flags=re.IGNORECASE)
    return text.strip(" \"'“”‘’,;:()[]")


def _join_initials(words: list[str]) -> list[str]:
    """Runs of two or more one-letter words become one: "j p morgan" -> "jp morgan", like "J.P."."""
    joined: list[str] = []
    run = ""
    for word in words + [""]:  # the empty sentinel flushes the last run
        if len(word) == 1:
            run += word
            continue
        if run:
            joined.append(run)  # a lone letter stays a word of its own
            run = ""
        if word:
            joined.append(word)
    return joined


def _fold_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Pd" or ch in "/_":
        return " "  # word separators: "Coca-Cola" and "Coca Cola" are one name
    if category[0] in "PS":
        return ""  # "J.P." -> "jp", "AT&T" -> "att"
    return ch
