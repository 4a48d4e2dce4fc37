"""What reading a file gives: its text, where each piece came from, and how sure the reader was."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fintune.config.files import FilesConfig


@dataclass(frozen=True)
class Segment:
    """One piece of a file's text: an OCR line, a PDF page's text layer or a speech segment.

    ``offset`` is where it starts in :attr:`Extraction.text`. ``page`` counts from 1; ``box``
    is (x0, y0, x1, y1) in pixels of the page image OCR read; ``start``/``end`` are seconds."""

    text: str
    offset: int
    confidence: float | None = None
    page: int | None = None
    box: tuple[float, float, float, float] | None = None
    start: float | None = None
    end: float | None = None


@dataclass
class Extraction:
    """A file read into text, with its provenance; ``error`` says why it could not be read."""

    file: str
    kind: str  # image, pdf or audio
    engine: str
    text: str = ""
    segments: list[Segment] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    language: str | None = None
    digest: str | None = None  # sha256 of the file's bytes

    @property
    def confidence(self) -> float | None:
        """The mean confidence of its segments, weighted by their characters (None: no scores)."""
        scored = [(s.confidence, max(len(s.text), 1)) for s in self.segments if s.confidence is not None]
        if not scored:
            return None
        return sum(c * n for c, n in scored) / sum(n for _, n in scored)

    def locate(self, start: int, end: int) -> list[Segment]:
        """The segments a character span of :attr:`text` falls in: where an entity found in the
        text sits on the page (box) or in the recording (time span)."""
        return [s for s in self.segments if s.offset < end and start < s.offset + len(s.text)]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "segments": [asdict(s) for s in self.segments]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Extraction:
        segments = [Segment(**{**s, "box": tuple(s["box"]) if s.get("box") else None}) for s in data["segments"]]
        return cls(**{**data, "segments": segments})


def joined(pieces: list[dict[str, Any]], separator: str) -> tuple[str, list[Segment]]:
    """The text of ``pieces`` (each a Segment's fields but ``offset``, and optionally ``sep``:
    what joins it to the piece before, instead of ``separator``) and their segments with
    offsets, in order."""
    text_out, segments = "", []
    for piece in pieces:
        fields = {k: v for k, v in piece.items() if k != "sep"}
        text = fields.pop("text").strip()
        if not text:
            continue
        if segments:
            text_out += piece.get("sep", separator)
        segments.append(Segment(text=text, offset=len(text_out), **fields))
        text_out += text
    return text_out, segments


class Reader(Protocol):
    """Turns one kind of file into text. ``signature`` names the engine and every setting
    that changes its output: a cached reading is reused only under the same signature."""

    kind: str
    suffixes: tuple[str, ...]

    def signature(self, settings: FilesConfig) -> str: ...

    def read(self, path: Path, settings: FilesConfig) -> Extraction: ...
