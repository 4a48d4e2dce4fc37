"""data.files: scans, PDFs and recordings read into text before anything else (fintune.data.ingest)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fintune.config.strict import Strict


class FilesConfig(Strict):
    """A column of file paths (or a folder as ``data.train``) read into ``data.text_column``:
    images by OCR, PDFs by their text layer or OCR page by page, audio by speech-to-text."""

    column: str = Field("file", description="the column of file paths, relative to the data file's folder; with "
                        "a folder as data.train (or predict's input) there is one row per file, and files in "
                        "subfolders are labelled by the subfolder's name")
    ocr: Literal["rapidocr", "tesseract"] = Field("rapidocr", description="rapidocr: PP-OCRv4, Chinese and English, "
                                                  "shipped with fintune[documents]; tesseract: Debian's tesseract-ocr")
    ocr_languages: str = Field("eng", description="tesseract only: its language codes, e.g. eng+chi_sim")
    speech: Literal["whisper-base"] = Field("whisper-base", description="the catalogue's speech model "
                                            "(fintune models fetch whisper-base)")
    language: str | None = Field(None, description="audio: the spoken language (en, zh, ...); default: detected "
                                 "per file")
    pdf_text_layer: bool = Field(True, description="read a PDF page's own text where it has one (exact, fast); "
                                 "pages without one are rendered and read by OCR")
    dpi: int = Field(200, ge=72, le=600, description="PDF pages without a text layer are rendered at this "
                     "resolution for OCR")
    min_confidence: float = Field(0.8, ge=0, le=1, description="`data check` lists the files read with less "
                                  "confidence (OCR line scores, speech segment probabilities)")
    max_megabytes: float = Field(200, gt=0, description="a larger file is refused (named, the run goes on)")
    on_error: Literal["drop", "fail"] = Field("drop", description="drop: a file that cannot be read is named in "
                                              "a warning and its row dropped; fail: the run stops")
