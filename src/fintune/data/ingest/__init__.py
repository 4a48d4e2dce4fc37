"""data.files: images, PDFs and audio read into text, with provenance, before a run reads them.

A column of file paths (or a folder as the data) becomes the text column. Each file is read
by the reader of its kind (:data:`READERS`), cached by content (:class:`ReadingCache`), and a
file that cannot be read is named in a warning and its row dropped: one bad scan never stops a
run. What came from where (page and box, time span) and how sure the reader was stay with
each :class:`Extraction`; the table gets ``file_confidence``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fintune.config import DataConfig
from fintune.config.files import FilesConfig
from fintune.data.ingest.base import Extraction, Reader, Segment
from fintune.data.ingest.cache import ReadingCache, content_hash
from fintune.data.ingest.images import ImageReader
from fintune.data.ingest.pdf import PdfReader
from fintune.data.ingest.speech import AudioReader
from fintune.data.load import read_table
from fintune.errors import DataError

READERS: dict[str, Reader] = {reader.kind: reader for reader in (ImageReader(), PdfReader(), AudioReader())}
SUFFIXES: dict[str, Reader] = {suffix: reader for reader in READERS.values() for suffix in reader.suffixes}
CONFIDENCE_COLUMN = "file_confidence"
DIGEST_COLUMN = "file_sha256"

__all__ = ["CONFIDENCE_COLUMN", "DIGEST_COLUMN", "READERS", "SUFFIXES", "Extraction", "ReadingCache", "Segment",
           "files_of", "files_table", "folder_table", "ingest_table", "place", "placed_entities", "read_file",
           "read_files", "readings_of"]


def read_file(path: Path, settings: FilesConfig, cache: ReadingCache | None = None) -> Extraction:
    """One file read into text (from the cache when the same bytes were read the same way);
    an :class:`Extraction` with ``error`` set, never an exception, where it cannot be read."""
    reader = SUFFIXES.get(path.suffix.lower())
    if reader is None:
        return Extraction(str(path), "unknown", "", error=f"unsupported file type '{path.suffix}' (fintune reads "
                          f"{', '.join(sorted(SUFFIXES))})")
    if not path.is_file():
        return Extraction(str(path), reader.kind, "", error="no such file")
    megabytes = path.stat().st_size / 2**20
    if megabytes > settings.max_megabytes:
        return Extraction(str(path), reader.kind, "", error=f"{megabytes:.0f} MB, over data.files.max_megabytes "
                          f"({settings.max_megabytes:g})")
    cache = cache or ReadingCache()
    signature, digest = reader.signature(settings), content_hash(path)
    cached = cache.get(digest, signature, str(path))
    if cached is not None:
        cached.digest = digest
        return cached
    try:
        extraction = reader.read(path, settings)
    except Exception as exc:  # noqa: BLE001 - a damaged file is reported, the others still read
        return Extraction(str(path), reader.kind, signature, error=f"{type(exc).__name__}: {exc}", digest=digest)
    extraction.digest = digest
    if not extraction.text.strip():
        # A row with no text would stop the run later (an empty input); it is dropped here,
        # named, like a file that cannot be read.
        extraction.error = "no text found in it (a blank page, a picture without text, or silence)"
    cache.put(digest, signature, extraction)
    return extraction


def placed_entities(entities: list[list[dict[str, Any]]], files: list[str], digests: list[str],
                    settings: FilesConfig) -> list[list[dict[str, Any]]]:
    """Each row's entities (a tagger's predictions on the text read from its file) with where
    they sit in the file: ``page`` and ``box`` (pixels, x0 y0 x1 y1) on a scan, ``start_s`` and
    ``end_s`` in a recording. Readings come from the cache, so nothing is read again."""
    cache = ReadingCache()
    out = []
    for row, file, digest in zip(entities, files, digests, strict=True):
        reader = SUFFIXES.get(Path(str(file)).suffix.lower())
        reading = cache.get(str(digest), reader.signature(settings), str(file)) if reader is not None else None
        out.append([{**e, **place(reading, e)} for e in row] if reading is not None else row)
    return out


def place(reading: Extraction, entity: dict[str, Any]) -> dict[str, Any]:
    """Where one entity of ``reading.text`` sits: the part of its line's box its characters
    take (proportionally), or its segment's time span. The entity's text is looked up near
    its offset first, since cleaning may have moved offsets by a character or two."""
    at = reading.text.find(entity["text"], max(0, int(entity["start"]) - 20))
    start, end = (at, at + len(entity["text"])) if at >= 0 else (int(entity["start"]), int(entity["end"]))
    segments = reading.locate(start, end)
    if not segments:
        return {}
    first, last = segments[0], segments[-1]
    if first.start is not None:
        return {"start_s": round(first.start, 2), "end_s": round(last.end or first.start, 2)}
    if first.box is None:
        return {"page": first.page}
    x0, y0, x1, y1 = first.box
    if len(segments) == 1 and first.text:
        share = (x1 - x0) / len(first.text)
        x0, x1 = x0 + share * max(start - first.offset, 0), x0 + share * min(end - first.offset, len(first.text))
    return {"page": first.page, "box": [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)]}


def read_files(paths: list[Path], settings: FilesConfig, cache: ReadingCache | None = None,
               on_file: Callable[[Extraction], None] | None = None) -> list[Extraction]:
    """Every file read in order; ``on_file`` is told after each (progress)."""
    cache = cache or ReadingCache()
    out = []
    for path in paths:
        extraction = read_file(path, settings, cache)
        out.append(extraction)
        if on_file is not None:
            on_file(extraction)
    return out


def folder_table(folder: Path, settings: FilesConfig, label_column: str) -> pd.DataFrame:
    """One row per readable file under ``folder`` (sorted), its path in ``settings.column``; files
    in subfolders get the first subfolder's name as their label."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(f"no images, PDFs or audio files under this folder (fintune reads "
                        f"{', '.join(sorted(SUFFIXES))})", file=str(folder))
    table = pd.DataFrame({settings.column: [str(p) for p in files]})
    labels = [p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else None for p in files]
    if any(label is not None for label in labels):
        table[label_column] = labels
    return table


def files_of(path: str, cfg: DataConfig) -> tuple[pd.DataFrame, list[Path]]:
    """The table of ``path`` (a data file naming files, or a folder of files; its index the row
    numbers from 1) and the file each row names."""
    assert cfg.files is not None
    folder = Path(path)
    if folder.is_dir() and not any(folder.glob("*.parquet")) and not (folder / "dataset_info.json").exists():
        table, base = folder_table(folder, cfg.files, cfg.label_column), folder
    else:
        table, base = read_table(path, cfg.format, cfg.encoding), folder.parent
        if cfg.files.column not in table.columns:
            raise DataError(f"data.files.column '{cfg.files.column}' is not a column of this table (columns: "
                            f"{', '.join(map(str, table.columns))})", file=path)
    table.index = np.arange(1, len(table) + 1)
    return table, [Path(str(v)) if Path(str(v)).is_absolute() else base / str(v) for v in table[cfg.files.column]]


def files_table(path: str, cfg: DataConfig) -> pd.DataFrame:
    """:func:`files_of`'s table with every file read into ``data.text_column``."""
    assert cfg.files is not None and cfg.text_column is not None
    table, paths = files_of(path, cfg)
    return ingest_table(table, paths, cfg.files, cfg.text_column, path, show_progress=True)


def readings_of(paths: dict[str, str | None], cfg: DataConfig) -> dict[str, list[Extraction]]:
    """Each split's readings (from the cache after a first run), for `data check`'s report."""
    assert cfg.files is not None
    return {split: read_files(files_of(path, cfg)[1], cfg.files) for split, path in paths.items() if path}


def ingest_table(table: pd.DataFrame, paths: list[Path], settings: FilesConfig, text_column: str, source: str,
                 show_progress: bool = False) -> pd.DataFrame:
    """``table`` with each row's file (``paths``) read into ``text_column`` and its reader's
    confidence in ``file_confidence``. Rows whose file cannot be read are named in one warning
    and dropped (``on_error: fail``: a DataError)."""
    from rich.progress import Progress

    from fintune.console import console

    with Progress(console=console, disable=not show_progress, transient=True) as progress:
        bar = progress.add_task("reading files", total=len(paths))
        readings = read_files(paths, settings, on_file=lambda _: progress.advance(bar))
    failed = [(row, e) for row, e in zip(table.index, readings) if e.error is not None]
    if failed and settings.on_error == "fail":
        row, first = failed[0]
        raise DataError(f"cannot read {first.file}: {first.error}", file=source, row=int(row),
                        column=settings.column)
    if failed:
        named = "; ".join(f"{Path(e.file).name}: {e.error}" for _, e in failed[:5])
        warnings.warn(f"{source}: {len(failed)} of {len(paths)} files could not be read and their rows are dropped "
                      f"({named}{'; ...' if len(failed) > 5 else ''})", stacklevel=2)
    out = table.copy()
    out[text_column] = [e.text for e in readings]
    out[CONFIDENCE_COLUMN] = [e.confidence for e in readings]
    # Which exact bytes each row was read from: provenance for a review, and the key of the
    # reading in the cache (where an entity found later is placed on its page).
    out[DIGEST_COLUMN] = [e.digest for e in readings]
    return out.loc[[e.error is None for e in readings]]
