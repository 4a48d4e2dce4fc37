"""data.files: images, PDFs and audio read into text with provenance, cached, errors per file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from fintune.config import FilesConfig, validate_config
from fintune.data.ingest import (
    CONFIDENCE_COLUMN, READERS, SUFFIXES, ReadingCache, files_table, folder_table, read_file,
)
from fintune.data.ingest.cache import content_hash
from fintune.errors import DataError
from tests.data.ingest.conftest import render

pytest.importorskip("rapidocr_onnxruntime")
SETTINGS = FilesConfig()


def test_every_reader_has_suffixes_of_its_own() -> None:
    assert set(READERS) == {"image", "pdf", "audio"}
    for suffix, reader in SUFFIXES.items():
        assert suffix.startswith(".") and suffix in reader.suffixes
    assert sum(len(r.suffixes) for r in READERS.values()) == len(SUFFIXES)  # no suffix claimed twice


def test_an_image_is_read_line_by_line_with_boxes_and_confidence(tmp_path: Path) -> None:
    image = render("Net income rose 12%\nTotal revenue 4,567.89", tmp_path / "scan.png")
    reading = read_file(image, SETTINGS)
    assert reading.error is None and reading.kind == "image"
    # PP-OCRv4 sometimes drops the space between words (benchmarks/documents.py measures it).
    assert "Totalrevenue4,567.89" in reading.text.replace(" ", "") and reading.text.startswith("Net")
    assert reading.confidence is not None and reading.confidence > 0.9
    assert all(s.page == 1 for s in reading.segments)
    assert reading.segments[0].box[1] < reading.segments[-1].box[1]  # top to bottom
    # An entity found in the text is located on the page: the box it was read from.
    at = reading.text.index("4,567.89")
    (where,) = reading.locate(at, at + 8)
    assert "4,567.89" in where.text and where.box[1] > reading.segments[0].box[3]


def test_boxes_on_one_row_are_read_left_to_right_and_joined_by_a_space() -> None:
    from fintune.data.ingest.base import joined
    from fintune.data.ingest.images import reading_order

    lines = [{"text": "4,567.89", "confidence": 0.9, "box": (300, 52, 400, 80)},
             {"text": "Net income", "confidence": 0.9, "box": (20, 10, 200, 40)},
             {"text": "Total revenue", "confidence": 0.9, "box": (20, 50, 250, 82)}]
    text, segments = joined(reading_order(lines), "\n")
    assert text == "Net income\nTotal revenue 4,567.89"
    assert [text[s.offset:s.offset + len(s.text)] for s in segments] == ["Net income", "Total revenue", "4,567.89"]


def test_a_reading_is_cached_by_content_whatever_the_file_is_called(tmp_path: Path, reading_cache: Path) -> None:
    image = render("Dividend 0.25", tmp_path / "a.png")
    first = read_file(image, SETTINGS)
    assert len(list(reading_cache.rglob("*.json"))) == 1
    copy = Path(shutil.copy(image, tmp_path / "b.png"))
    # The cached reading answers for the same bytes under another name (no second OCR pass:
    # an entry edited in place is what comes back).
    entry = next(reading_cache.rglob("*.json"))
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "text": "from the cache"}))
    second = read_file(copy, SETTINGS)
    assert second.text == "from the cache" and second.file == str(copy)
    assert first.text != second.text
    # Another engine's settings are another reading.
    assert ReadingCache().get(content_hash(copy), "tesseract:eng", str(copy)) is None


def test_a_pdf_reads_its_text_layer_and_ocrs_pages_without_one(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    typed = tmp_path / "typed.pdf"
    figure = plt.figure(figsize=(6, 2))
    figure.text(0.05, 0.5, "The Borrower shall repay the loan in full", fontsize=14)
    figure.savefig(typed)
    plt.close(figure)
    reading = read_file(typed, SETTINGS)
    assert reading.error is None and reading.confidence == 1.0
    assert reading.text == "The Borrower shall repay the loan in full" and reading.segments[0].page == 1
    scanned = tmp_path / "scanned.pdf"
    pages = [Image.open(render(t, tmp_path / f"p{i}.png")).convert("RGB")
             for i, t in enumerate(["Page one: cash 100", "Page two: debt 200"])]
    pages[0].save(scanned, save_all=True, append_images=pages[1:], resolution=72)
    reading = read_file(scanned, SETTINGS.model_copy(update={"dpi": 150}))
    assert [s.page for s in reading.segments] == [1, 2] and reading.segments[0].box is not None
    assert "Pagetwo:debt200" in reading.text.replace(" ", "")


@pytest.mark.parametrize("case", ["missing", "unsupported", "too_large", "damaged", "blank"])
def test_a_file_that_cannot_be_read_is_an_error_in_its_reading_not_an_exception(tmp_path: Path, case: str) -> None:
    settings = SETTINGS
    path = tmp_path / "x.png"
    if case == "unsupported":
        path = tmp_path / "x.docx"
        path.write_bytes(b"PK")
    elif case == "too_large":
        render("big", path)
        settings = SETTINGS.model_copy(update={"max_megabytes": 1e-6})
    elif case == "damaged":
        path.write_bytes(b"\x89PNG not really")
    elif case == "blank":
        render("", path)
    reading = read_file(path, settings)
    expected = {"missing": "no such file", "unsupported": "unsupported file type '.docx'",
                "too_large": "over data.files.max_megabytes", "damaged": "UnidentifiedImageError",
                "blank": "no text found"}[case]
    assert reading.error is not None and expected in reading.error and reading.text == ""


def _config(tmp_path: Path, train: Path, **files: object) -> object:
    return validate_config({"output_dir": str(tmp_path / "run"), "model": {"kind": "bow"},
                            "data": {"train": str(train), "text_column": "text", "files": files}})


def test_a_table_of_files_becomes_text_and_unreadable_rows_are_named_and_dropped(tmp_path: Path) -> None:
    render("Profit warning", tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"broken")
    table = tmp_path / "docs.csv"
    pd.DataFrame({"path": ["good.png", "bad.png", "gone.png"], "label": ["neg", "neg", "pos"]}).to_csv(table,
                                                                                                       index=False)
    cfg = _config(tmp_path, table, column="path")
    with pytest.warns(UserWarning, match=r"2 of 3 files could not be read .*bad.png.*gone.png: no such file"):
        frame = files_table(str(table), cfg.data)
    assert list(frame.index) == [1] and frame.loc[1, "text"].replace(" ", "") == "Profitwarning"
    assert frame.loc[1, CONFIDENCE_COLUMN] > 0.9
    strict = _config(tmp_path, table, column="path", on_error="fail")
    with pytest.raises(DataError, match="bad.png") as error:
        files_table(str(table), strict.data)
    assert "row 2" in str(error.value)


def test_a_folder_is_one_row_per_file_labelled_by_its_subfolder(tmp_path: Path) -> None:
    for label, text in [("negative", "Losses widen"), ("positive", "Record profit")]:
        (tmp_path / "docs" / label).mkdir(parents=True)
        render(text, tmp_path / "docs" / label / "1.png")
    (tmp_path / "docs" / "notes.txt").write_text("not a document")
    table = folder_table(tmp_path / "docs", SETTINGS, "label")
    assert list(table["label"]) == ["negative", "positive"] and len(table) == 2
    frame = files_table(str(tmp_path / "docs"), _config(tmp_path, tmp_path / "docs").data)
    assert [t.replace(" ", "") for t in frame["text"]] == ["Losseswiden", "Recordprofit"]


def test_data_files_needs_a_text_column_and_refuses_unknown_keys(tmp_path: Path) -> None:
    from fintune.errors import ConfigError

    with pytest.raises(ConfigError, match="data.files reads each file into data.text_column"):
        validate_config({"model": {"kind": "bow"}, "data": {"train": "x.csv", "feature_columns": ["a"],
                                                            "files": {}}})
    with pytest.raises(ConfigError, match="colum"):
        validate_config({"model": {"kind": "bow"}, "data": {"train": "x.csv", "text_column": "text",
                                                            "files": {"colum": "path"}}})


def test_audio_without_the_fetched_speech_model_says_how_to_fetch_it(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    wav = tmp_path / "call.wav"
    _tone(wav)
    reading = read_file(wav, SETTINGS)
    assert reading.kind == "audio" and "fintune models fetch whisper-base" in (reading.error or "")


def _tone(path: Path) -> None:
    import wave

    import numpy as np

    samples = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())


def test_speech_is_transcribed_with_time_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs where the speech model was fetched before (never downloaded by a test) and Debian's
    espeak-ng can speak the sentence."""
    pytest.importorskip("faster_whisper")
    real_home = Path("~/.cache/fintune").expanduser()
    if not (real_home / "backbones" / "whisper-base" / "fintune-backbone.json").exists() or not shutil.which("espeak-ng"):
        pytest.skip("needs `fintune models fetch whisper-base` done on this machine and espeak-ng")
    monkeypatch.setenv("FINTUNE_HOME", str(real_home))
    wav = tmp_path / "call.wav"
    # espeak-ng's voice is hard on Whisper base (benchmarks/documents.py measures the word error
    # rate); the words checked below are the ones it gets.
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "150", "-w", str(wav),
                    "Revenue grew ten percent this quarter, and the bank raised its dividend."], check=True)
    reading = read_file(wav, SETTINGS.model_copy(update={"language": "en"}), ReadingCache(tmp_path / "cache"))
    assert reading.error is None and reading.language == "en"
    assert "revenue" in reading.text.lower() and "10%" in reading.text and "bank" in reading.text
    assert reading.segments[0].start == 0.0 and reading.segments[-1].end > 1.0


def test_entities_found_in_the_text_are_placed_on_the_page_or_in_the_recording(tmp_path: Path) -> None:
    from fintune.data.ingest import Extraction, Segment, place, placed_entities

    scan = Extraction("a.png", "image", "x", "Lender: Wells Fargo\nBorrower: Acme",
                      [Segment("Lender: Wells Fargo", 0, 0.99, 1, (100.0, 50.0, 290.0, 80.0)),
                       Segment("Borrower: Acme", 20, 0.98, 1, (100.0, 90.0, 240.0, 120.0))])
    wells = {"type": "ORG", "text": "Wells Fargo", "start": 8, "end": 19, "score": 0.9}
    # The entity takes the last 11 of its line's 19 characters: that part of the line's box.
    assert place(scan, wells) == {"page": 1, "box": [180.0, 50.0, 290.0, 80.0]}
    # Offsets moved by cleaning are found again by the entity's text nearby.
    assert place(scan, {**wells, "text": "Acme", "start": 29, "end": 33})["box"][1] == 90.0
    call = Extraction("c.wav", "audio", "x", "Acme beat estimates. Shares rose.",
                      [Segment("Acme beat estimates.", 0, 0.7, start=0.0, end=2.5),
                       Segment("Shares rose.", 21, 0.8, start=2.5, end=4.0)])
    assert place(call, {"type": "ORG", "text": "Acme", "start": 0, "end": 4}) == {"start_s": 0.0, "end_s": 2.5}
    # From the cache, by the file's sha256, as predict does for a tagger's entities.
    image = render("Lender: Wells Fargo", tmp_path / "lender.png")
    reading = read_file(image, SETTINGS)
    at = reading.text.find("Wells")
    entity = {"type": "ORG", "text": reading.text[at:], "start": at, "end": len(reading.text), "score": 0.9}
    (placed,) = placed_entities([[entity]], [str(image)], [content_hash(image)], SETTINGS)
    assert placed[0]["page"] == 1 and placed[0]["box"][2] == pytest.approx(reading.segments[-1].box[2], abs=1)
