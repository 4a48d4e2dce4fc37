"""Images (PNG, JPEG, TIFF, BMP; every page of a multi-page TIFF) read by OCR."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fintune.config.files import FilesConfig
from fintune.data.ingest.base import Extraction, joined
from fintune.data.ingest.ocr import OCR_ENGINES, ocr_signature


def page_lines(image: Any, page: int, settings: FilesConfig) -> list[dict[str, Any]]:
    """OCR's lines of one page image (a PIL image) in reading order, each marked with its page.
    Boxes on the same row (a table's cells, words the detector split) are joined by a space,
    rows by a line break."""
    array = np.asarray(image.convert("RGB"))
    return [{**line, "page": page} for line in reading_order(OCR_ENGINES[settings.ocr](array, settings))]


def reading_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``lines`` top to bottom, left to right within a row; a box whose vertical middle falls
    inside the row's first box belongs to that row (and gets ``sep`` " ")."""
    rows: list[list[dict[str, Any]]] = []
    for line in sorted(lines, key=lambda item: item["box"][1]):
        x0, y0, x1, y1 = line["box"]
        if rows and rows[-1][0]["box"][1] <= (y0 + y1) / 2 <= rows[-1][0]["box"][3]:
            rows[-1].append(line)
        else:
            rows.append([line])
    ordered = []
    for row in rows:
        row.sort(key=lambda item: item["box"][0])
        ordered += [row[0], *({**item, "sep": " "} for item in row[1:])]
    return ordered


class ImageReader:
    kind = "image"
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

    def signature(self, settings: FilesConfig) -> str:
        return ocr_signature(settings)

    def read(self, path: Path, settings: FilesConfig) -> Extraction:
        from PIL import Image, ImageSequence

        started = time.perf_counter()
        lines = []
        with Image.open(path) as image:
            for page, frame in enumerate(ImageSequence.Iterator(image), start=1):
                lines += page_lines(frame, page, settings)
        text, segments = joined(lines, "\n")
        return Extraction(str(path), self.kind, self.signature(settings), text, segments,
                          time.perf_counter() - started)
