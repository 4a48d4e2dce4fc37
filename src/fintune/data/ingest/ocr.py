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


# PP-OCRv4's recognizer reads lines scaled to 48 px high; smaller lines (a 150-200 dpi scan at
# 11 pt is 20-35 px) lose the spaces between words. A page whose median line is under
# SMALL_LINE px (its detected box, padding included) is read again scaled up by UPSCALE. On
# ten pages made from FIN5 sentences (never the benchmark's FIN3 pages) the degraded set's CER
# went from 12.9% to 5.6%; scaling to a fixed line height instead (x2 for the smallest) gave
# 6.1%, and 300 dpi pages were unchanged (0.2%).
SMALL_LINE = 55
UPSCALE = 1.5
# The angle classifier turns whole lines by 180 degrees when it guesses wrong, which on the
# benchmark's upright pages lost whole lines (CER 0.18 at 300 dpi with it); a scan turned
# upside down is fixed before OCR.
USE_ANGLE_CLASSIFIER = False


@lru_cache(maxsize=1)
def _rapidocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise FintuneError("OCR needs fintune[documents] (rapidocr-onnxruntime): pip install 'fintune[documents]'") \
            from None
    from fintune.catalogue import verified_folder

    verified_folder("rapidocr")  # the ONNX files are the vetted ones
    return RapidOCR()


def rapidocr_lines(image: np.ndarray, settings: FilesConfig) -> list[Line]:
    """PP-OCRv4's lines, boxes in the image's own pixels; small text is read again scaled up."""
    lines, heights = _rapidocr_pass(image, 1.0)
    if heights and float(np.median(heights)) < SMALL_LINE:
        lines, _ = _rapidocr_pass(image, UPSCALE)
    return lines


def _rapidocr_pass(image: np.ndarray, scale: float) -> tuple[list[Line], list[float]]:
    """The lines read at ``scale`` and each line's height in the image's pixels (the side of
    its quadrilateral, not of its upright box, which a slightly rotated long line inflates)."""
    if scale != 1.0:
        import cv2

        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    found, _ = _rapidocr()(image, use_cls=USE_ANGLE_CLASSIFIER)
    lines, heights = [], []
    for points, text, score in found or []:
        xs, ys = [p[0] / scale for p in points], [p[1] / scale for p in points]
        lines.append({"text": text, "confidence": float(score), "box": (min(xs), min(ys), max(xs), max(ys))})
        heights.append(float(np.hypot(xs[3] - xs[0], ys[3] - ys[0])))
    return lines, heights


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
    return f"rapidocr:1.4.4:cls={USE_ANGLE_CLASSIFIER}:small={SMALL_LINE}x{UPSCALE}"
