"""OCR engines: an image in, lines of text with their box and confidence out.

``rapidocr`` (PP-OCRv4 in ONNX, Chinese and English, from fintune[documents]) is the default;
``tesseract`` calls Debian's tesseract-ocr, a second engine to compare with.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from fintune.config.files import FilesConfig
from fintune.errors import FintuneError

Line = dict[str, Any]  # text, confidence (0-1), box (x0, y0, x1, y1)


@lru_cache(maxsize=1)
def _rapidocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise FintuneError("OCR needs fintune[documents] (rapidocr-onnxruntime): pip install 'fintune[documents]'") \
            from None
    from fintune.models.catalogue import verified_folder

    verified_folder("rapidocr")  # the ONNX files are the vetted ones
    return RapidOCR()


def rapidocr_lines(image: np.ndarray, settings: FilesConfig) -> list[Line]:
    """PP-OCRv4's lines, in its reading order (top to bottom)."""
    found, _ = _rapidocr()(image)
    lines = []
    for points, text, score in found or []:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        lines.append({"text": text, "confidence": float(score), "box": (min(xs), min(ys), max(xs), max(ys))})
    return lines


def tesseract_lines(image: np.ndarray, settings: FilesConfig) -> list[Line]:
    """Tesseract's words grouped into its lines; a line's confidence is its words' mean."""
    if shutil.which("tesseract") is None:
        raise FintuneError("data.files.ocr is tesseract, but the tesseract command is not installed "
                           "(Debian: apt-get install tesseract-ocr)")
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    done = subprocess.run(["tesseract", "stdin", "stdout", "-l", settings.ocr_languages, "tsv"],
                          input=buffer.getvalue(), capture_output=True, check=False)
    if done.returncode != 0:
        raise FintuneError(f"tesseract failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    lines: dict[tuple[int, int, int], list[dict[str, str]]] = {}
    for word in csv.DictReader(io.StringIO(done.stdout.decode()), delimiter="\t", quoting=csv.QUOTE_NONE):
        if word.get("text", "").strip() and float(word["conf"]) >= 0:
            lines.setdefault((int(word["block_num"]), int(word["par_num"]), int(word["line_num"])), []).append(word)
    out = []
    for words in lines.values():
        x0 = min(int(w["left"]) for w in words)
        y0 = min(int(w["top"]) for w in words)
        x1 = max(int(w["left"]) + int(w["width"]) for w in words)
        y1 = max(int(w["top"]) + int(w["height"]) for w in words)
        out.append({"text": " ".join(w["text"] for w in words),
                    "confidence": sum(float(w["conf"]) for w in words) / len(words) / 100, "box": (x0, y0, x1, y1)})
    return out


OCR_ENGINES: dict[str, Callable[[np.ndarray, FilesConfig], list[Line]]] = {
    "rapidocr": rapidocr_lines,
    "tesseract": tesseract_lines,
}


def ocr_signature(settings: FilesConfig) -> str:
    """The engine and the settings its output depends on (the cache key's second half)."""
    if settings.ocr == "tesseract":
        return f"tesseract:{settings.ocr_languages}"
    return "rapidocr:1.4.4"
