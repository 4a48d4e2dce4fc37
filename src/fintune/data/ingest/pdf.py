"""PDFs, page by page: the page's own text layer where it has one, OCR of the rendered page
where it has none (a scan)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fintune.config.files import FilesConfig
from fintune.data.ingest.base import Extraction, joined
from fintune.data.ingest.images import page_lines
from fintune.data.ingest.ocr import ocr_signature

# A page whose text layer has fewer characters than this is treated as a scan (a page number
# or a stamp is not the page's text).
MIN_LAYER_CHARS = 20


class PdfReader:
    kind = "pdf"
    suffixes = (".pdf",)

    def signature(self, settings: FilesConfig) -> str:
        layer = "layer+" if settings.pdf_text_layer else ""
        return f"pdf:{layer}{ocr_signature(settings)}@{settings.dpi}"

    def read(self, path: Path, settings: FilesConfig) -> Extraction:
        import pypdfium2

        started = time.perf_counter()
        pieces: list[dict[str, Any]] = []
        document = pypdfium2.PdfDocument(str(path))
        try:
            for number in range(len(document)):
                page = document[number]
                layer = page.get_textpage().get_text_range().strip() if settings.pdf_text_layer else ""
                if len(layer) >= MIN_LAYER_CHARS:
                    # The text layer is what the PDF says, not a guess: confidence 1.
                    pieces.append({"text": layer, "confidence": 1.0, "page": number + 1})
                else:
                    image = page.render(scale=settings.dpi / 72).to_pil()
                    pieces += page_lines(image, number + 1, settings)
        finally:
            document.close()
        text, segments = joined(pieces, "\n")
        return Extraction(str(path), self.kind, self.signature(settings), text, segments,
                          time.perf_counter() - started)
