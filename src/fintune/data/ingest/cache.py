"""Readings cached by content: the sha256 of a file's bytes and the reader's signature, so a
second run (or a renamed copy of the same scan) is not read again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fintune.data.ingest.base import Extraction
from fintune.files import fintune_home, write_text
from fintune.catalogue import sha256


def content_hash(path: Path) -> str:
    """The sha256 of a file's bytes (read in blocks, as the catalogue checks weights)."""
    return sha256(path)


class ReadingCache:
    """Extractions on disk under ``$FINTUNE_HOME/ingest`` (default ``~/.cache/fintune``)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or fintune_home() / "ingest"

    def _path(self, digest: str, signature: str) -> Path:
        key = hashlib.sha256(signature.encode()).hexdigest()[:16]
        return self.folder / digest[:2] / f"{digest}-{key}.json"

    def get(self, digest: str, signature: str, file: str) -> Extraction | None:
        path = self._path(digest, signature)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, or a damaged entry: read the file again
        # The same bytes under another name: the reading holds, the name is this one.
        return Extraction.from_json({**data, "file": file})

    def put(self, digest: str, signature: str, extraction: Extraction) -> None:
        path = self._path(digest, signature)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(extraction.to_json(), ensure_ascii=False), "reading cache")
