"""Files made here for the readers: rendered text as images and PDFs, and spoken text."""

from __future__ import annotations

from pathlib import Path

import pytest

FONT = "DejaVuSans.ttf"


def render(text: str, path: Path, size: int = 32) -> Path:
    """``text`` in black on white, one line per line of text, as an image file."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(FONT, size)
    except OSError:  # no DejaVu on this machine: Pillow's own scalable font
        font = ImageFont.load_default(size)
    lines = text.split("\n")
    # A page's proportions, not a strip around the words: the detector scales its input to a
    # fixed size, and a tiny image blown up eight times is not what a scan looks like.
    image = Image.new("RGB", (max(900, 120 + int(size * 0.62 * max(map(len, lines)))),
                              max(300, 120 + int(size * 1.6) * len(lines))), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + int(size * 1.6) * i), line, fill="black", font=font)
    image.save(path)
    return path


@pytest.fixture(autouse=True)
def reading_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test reads with an empty cache of its own (and the shipped OCR models)."""
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "ingest"
