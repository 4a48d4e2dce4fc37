"""Tag schemes (IO, BIO, BIOES), entity spans from tags, and words with character offsets.

Spans follow conlleval (and seqeval's default mode): an ``I-X`` that does not continue an
``X`` entity starts one, so IO files such as the SEC filings data read naturally. Two
adjacent entities of one type cannot be told apart in IO; converting IO to BIO or BIOES
joins them, which is all the file says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Scheme = Literal["io", "bio", "bioes"]
OUTSIDE = "O"
PREFIXES: dict[str, tuple[str, ...]] = {"io": ("I",), "bio": ("B", "I"), "bioes": ("B", "I", "E", "S")}


@dataclass(frozen=True)
class Entity:
    """One entity found in a text: its type, surface text and character offsets (end exclusive)."""

    type: str
    text: str
    start: int
    end: int
    score: float  # mean probability of the entity's tags, a rough confidence

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type, "text": self.text, "start": self.start, "end": self.end,
                "score": round(self.score, 4)}


def parse_tag(tag: str) -> tuple[str, str | None]:
    """``("B", "ORG")`` from ``B-ORG``; ``("O", None)`` for outside. Raises ValueError otherwise."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I", "E", "S") or not kind:
        raise ValueError(f"tag '{tag}' is not O or PREFIX-TYPE with PREFIX one of B, I, E, S")
    return prefix, kind


def detect_scheme(sequences: Sequence[Sequence[str]]) -> Scheme:
    """The smallest scheme whose prefixes cover every tag used."""
    used = {parse_tag(t)[0] for seq in sequences for t in seq} - {OUTSIDE}
    if used & {"E", "S"}:
        return "bioes"
    return "bio" if "B" in used else "io"


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities as ``(type, first, last + 1)`` word positions, in any of the three schemes."""
    found: list[tuple[str, int, int]] = []
    kind: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        prefix, this = parse_tag(tag)
        # Close the open entity unless this tag continues it.
        if kind is not None and not (prefix in ("I", "E") and this == kind):
            found.append((kind, start, i))
            kind = None
        if this is not None and kind is None:
            kind, start = this, i
        if prefix in ("E", "S") and kind is not None:
            found.append((kind, start, i + 1))
            kind = None
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


def tags_from_spans(entities: Sequence[tuple[str, int, int]], length: int, scheme: Scheme) -> list[str]:
    """The tag sequence of ``entities`` over ``length`` words in ``scheme``."""
    tags = [OUTSIDE] * length
    for kind, start, end in entities:
        for i in range(start, end):
            tags[i] = f"I-{kind}"
        if scheme == "io":
            continue
        tags[start] = f"B-{kind}"
        if scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[end - 1] = f"E-{kind}"
    return tags


def convert(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """The same entities written in another scheme."""
    return tags_from_spans(spans(tags), len(tags), scheme)


def tag_set(types: Sequence[str], scheme: Scheme) -> list[str]:
    """Every tag of ``scheme`` over ``types``: ``O`` first, then by type and prefix."""
    return [OUTSIDE] + [f"{p}-{t}" for t in sorted(types) for p in PREFIXES[scheme]]


def allowed_transitions(tags: Sequence[str], scheme: Scheme) -> list[tuple[int, int]]:
    """Pairs (i, j) such that tag j may follow tag i in ``scheme``; a CRF forbids the rest."""
    pairs = []
    for i, a in enumerate(tags):
        pa, ta = parse_tag(a)
        for j, b in enumerate(tags):
            pb, tb = parse_tag(b)
            if scheme == "bio" and pb == "I":
                ok = ta == tb  # I-X continues B-X or I-X
            elif scheme == "bioes":
                open_a = pa in ("B", "I")
                ok = (ta == tb and pb in ("I", "E")) if open_a else pb in ("B", "S", OUTSIDE)
            else:
                ok = True
            if ok:
                pairs.append((i, j))
    return pairs


def allowed_starts(tags: Sequence[str], scheme: Scheme) -> list[int]:
    """Tags that may open a sentence (not I- or E- in BIO and BIOES)."""
    if scheme == "io":
        return list(range(len(tags)))
    return [i for i, t in enumerate(tags) if parse_tag(t)[0] in ("B", "S", OUTSIDE)]


def allowed_ends(tags: Sequence[str], scheme: Scheme) -> list[int]:
    """Tags that may close a sentence (not B- or I- in BIOES)."""
    if scheme != "bioes":
        return list(range(len(tags)))
    return [i for i, t in enumerate(tags) if parse_tag(t)[0] in ("E", "S", OUTSIDE)]


# Words and runs of punctuation, as CoNLL files split them: "Inc." -> "Inc", ".".
WORD = re.compile(r"\w+(?:[-'’&]\w+)*|[^\w\s]+")


def words(text: str) -> list[tuple[str, int, int]]:
    """The words of a raw text with their character offsets ``(word, start, end)``."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


# Word shapes for uncased encoders, which lowercase their input and lose what casing says
# about names in filings ("Borrower" as a defined party, "SILICON VALLEY BANK" in a heading).
SHAPES = ("pad", "lower", "title", "upper", "initial", "mixed", "digits", "other")


def word_shape(word: str) -> int:
    """The index in :data:`SHAPES` of a word's shape: lower, Title, UPPER, a single capital
    (an initial), mIxed, containing digits, or other (punctuation)."""
    letters = [c for c in word if c.isalpha()]
    if any(c.isdigit() for c in word):
        return SHAPES.index("digits")
    if not letters:
        return SHAPES.index("other")
    if all(c.islower() for c in letters):
        return SHAPES.index("lower")
    if all(c.isupper() for c in letters):
        return SHAPES.index("initial" if len(letters) == 1 else "upper")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return SHAPES.index("title")
    return SHAPES.index("mixed")
