"""Entities from a list of names (a gazetteer), for text without an NER model: Chinese news
has no NER training split here, so the head and tail mentions of FinRE's training items make a
weak gazetteer of company names. It finds only the names it lists, spelled as listed.

Matching is by longest name first, left to right, without overlaps ("中国银行" wins over
"中国" where both are listed); Latin names must not sit inside a longer Latin word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fintune.errors import DataError


@dataclass(frozen=True)
class Mention:
    """One listed name found in a text (``type`` is the list's type column, or ``ENT``)."""

    type: str
    text: str


class Gazetteer:
    """A fixed list of entity names that behaves as an NER run for the graph."""

    task = "token_classification"

    def __init__(self, names: dict[str, str]) -> None:
        if not names:
            raise DataError("the gazetteer lists no names")
        self.types = names
        ordered = sorted(names, key=len, reverse=True)  # the longest name wins an overlap
        # ASCII letters and digits bound a Latin name; CJK characters sit right against a name.
        self.pattern = re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])" if n.isascii()
                                           else re.escape(n) for n in ordered))

    @classmethod
    def read(cls, path: str | Path) -> Gazetteer:
        """Names from a text file (one a line) or a CSV with columns ``name`` and maybe ``type``."""
        path = Path(path)
        if not path.is_file():
            raise DataError("gazetteer file not found", file=str(path))
        if path.suffix.lower() == ".csv":
            import pandas as pd

            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "name" not in table.columns:
                raise DataError("a gazetteer CSV needs a 'name' column (and may have 'type')", file=str(path))
            types = table["type"] if "type" in table.columns else ["ENT"] * len(table)
            return cls({n.strip(): t.strip() or "ENT" for n, t in zip(table["name"], types) if n.strip()})
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls({line.strip(): "ENT" for line in lines if line.strip()})

    def entities(self, texts: list[str], batch_size: int = 32,
                 on_batch: Callable[[int], None] | None = None) -> list[list[Mention]]:
        """The listed names in each text, in order of appearance."""
        found = [[Mention(self.types[m.group()], m.group()) for m in self.pattern.finditer(text)] for text in texts]
        if on_batch is not None:
            on_batch(len(texts))
        return found

