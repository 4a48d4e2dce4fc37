"""An unlabeled corpus for continued pretraining (and distillation's unlabeled text), read
as a stream: text files and folders of ``.txt``, CSV / JSONL / Parquet columns.

Each text is cleaned like training data (``corpus.clean``), checked against the evaluation
files of ``corpus.exclude`` (the leakage guard: exact and normalized matches are dropped),
deduplicated, and masked (``corpus.privacy``). Memory stays flat as the corpus grows: files
are read in chunks, and deduplication keeps an 8-byte hash per distinct text, not the text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fintune.config import CorpusConfig, CorpusSource
from fintune.data.clean import clean_text
from fintune.data.privacy import mask
from fintune.errors import DataError

CHUNK_ROWS = 10_000  # table rows read at a time
MAX_PARAGRAPH = 1_000_000  # characters: a text file without blank lines still streams
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass
class SourceStats:
    """What one source gave: for the data report and the model card (never the text)."""

    path: str
    files: int = 0
    bytes: int = 0
    sha256: str = ""
    texts: int = 0


@dataclass
class CorpusStats:
    """Counts of a pass over the corpus: read, kept, and why the others were dropped."""

    sources: list[SourceStats] = field(default_factory=list)
    read: int = 0
    kept: int = 0
    too_short: int = 0
    duplicates: int = 0
    excluded_exact: int = 0
    excluded_normalized: int = 0
    exclude_files: list[SourceStats] = field(default_factory=list)
    masked_texts: int = 0

    def report(self) -> dict[str, Any]:
        return {"sources": [vars(s) for s in self.sources], "texts_read": self.read, "texts_kept": self.kept,
                "dropped_too_short": self.too_short, "dropped_duplicates": self.duplicates,
                "leakage_guard": {"files": [vars(s) for s in self.exclude_files],
                                  "excluded_exact": self.excluded_exact,
                                  "excluded_normalized": self.excluded_normalized},
                "texts_masked": self.masked_texts}


def normalized(text: str) -> str:
    """The text for near-duplicate matching: NFKC, case-folded, words only, single spaces."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _files_of(source: CorpusSource) -> list[Path]:
    path = Path(source.path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError(f"corpus folder {path} holds no .txt files")
        return files
    if not path.is_file():
        raise DataError(f"corpus source not found: {path}; give a file or a folder of .txt files")
    return [path]


def _format_of(file: Path, source: CorpusSource) -> str:
    if source.format != "auto":
        return source.format
    suffix = file.suffix.lower()
    formats = {".txt": "text", ".md": "text", ".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
    if suffix not in formats:
        raise DataError(f"cannot tell the format of {file} from its name; set format (text, csv, jsonl, parquet) "
                        "on this corpus source")
    return formats[suffix]


def _paragraphs(file: Path, encoding: str) -> Iterator[str]:
    """Paragraphs (blank-line separated) of a text file, read line by line."""
    lines: list[str] = []
    size = 0
    with open(file, encoding=encoding, errors="strict") as fh:
        for line in fh:
            if line.strip():
                lines.append(line)
                size += len(line)
                if size < MAX_PARAGRAPH:
                    continue
            if lines:
                yield "".join(lines)
                lines, size = [], 0
    if lines:
        yield "".join(lines)


def _column(frame: Any, column: str, file: Path) -> Any:
    if column not in frame.columns:
        raise DataError(f"corpus file {file} has no column '{column}' (it has: {', '.join(map(str, frame.columns))}); "
                        "set text_column on this source or corpus.text_column")
    return frame[column]


def _table_texts(file: Path, fmt: str, column: str, encoding: str) -> Iterator[Any]:
    import pandas as pd

    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(file)
        if column not in parquet.schema_arrow.names:
            raise DataError(f"corpus file {file} has no column '{column}' (it has: "
                            f"{', '.join(parquet.schema_arrow.names)}); set text_column")
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=[column]):
            yield from batch.column(0).to_pylist()
        return
    reader = (pd.read_csv(file, dtype=str, chunksize=CHUNK_ROWS, encoding=encoding, keep_default_na=False)
              if fmt == "csv" else pd.read_json(file, lines=True, dtype=False, chunksize=CHUNK_ROWS,
                                                encoding=encoding))
    with reader as chunks:
        for chunk in chunks:
            yield from _column(chunk, column, file)


def raw_texts(source: CorpusSource, cfg: CorpusConfig, stats: SourceStats | None = None) -> Iterator[str]:
    """Every text of one source as written (before cleaning), counting files, bytes and a checksum."""
    digest = hashlib.sha256()
    for file in _files_of(source):
        fmt = _format_of(file, source)
        if stats is not None:
            stats.files += 1
            stats.bytes += file.stat().st_size
        _hash_file(file, digest)
        try:
            texts = (_paragraphs(file, cfg.encoding) if fmt == "text"
                     else _table_texts(file, fmt, source.text_column or cfg.text_column, cfg.encoding))
            for text in texts:
                if isinstance(text, str) and text.strip():
                    if stats is not None:
                        stats.texts += 1
                    yield text
        except UnicodeDecodeError as exc:
            raise DataError(f"{file} is not {cfg.encoding} text ({exc.reason} at byte {exc.start}); set "
                            "corpus.encoding") from None
    if stats is not None:
        stats.sha256 = digest.hexdigest()


def _hash_file(file: Path, digest: Any) -> None:
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


class Corpus:
    """The corpus of a config, iterable once per pass; :attr:`stats` counts the last pass."""

    def __init__(self, cfg: CorpusConfig, extra_exclude: list[CorpusSource] | None = None) -> None:
        self.cfg = cfg
        self.stats = CorpusStats()
        self._excluded_exact: set[bytes] = set()
        self._excluded_normalized: set[bytes] = set()
        for source in [*cfg.exclude, *(extra_exclude or [])]:
            source_stats = SourceStats(source.path)
            for text in raw_texts(source, cfg, source_stats):
                cleaned = clean_text(text, cfg.clean)
                self._excluded_exact.add(text_hash(cleaned))
                self._excluded_normalized.add(text_hash(normalized(cleaned)))
            self.stats.exclude_files.append(source_stats)

    def __iter__(self) -> Iterator[str]:
        """The kept texts, cleaned, checked, deduplicated and masked, in source order."""
        cfg, stats = self.cfg, self.stats
        stats.sources, stats.read, stats.kept = [], 0, 0
        stats.too_short = stats.duplicates = stats.excluded_exact = stats.excluded_normalized = stats.masked_texts = 0
        seen: set[bytes] = set()
        masking = cfg.privacy.mask is not False
        for source in cfg.sources:
            source_stats = SourceStats(source.path)
            stats.sources.append(source_stats)
            for text in raw_texts(source, cfg, source_stats):
                stats.read += 1
                cleaned = clean_text(text, cfg.clean)
                if len(cleaned) < cfg.min_chars:
                    stats.too_short += 1
                    continue
                key = text_hash(cleaned)
                if key in self._excluded_exact:
                    stats.excluded_exact += 1
                    continue
                if text_hash(normalized(cleaned)) in self._excluded_normalized:
                    stats.excluded_normalized += 1
                    continue
                if cfg.deduplicate:
                    if key in seen:
                        stats.duplicates += 1
                        continue
                    seen.add(key)
                if masking:
                    masked = mask(cleaned, cfg.privacy)
                    stats.masked_texts += masked != cleaned
                    cleaned = masked
                stats.kept += 1
                yield cleaned


def is_held_out(text: str, fraction: float) -> bool:
    """Whether a text goes to the held-out split: by its hash, so the split is the same on every pass."""
    if fraction <= 0:
        return False
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest(),
                          "big") < fraction * 2 ** 32
