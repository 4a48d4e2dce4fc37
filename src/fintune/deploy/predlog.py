"""The prediction log: one SQLite row per prediction, written off the request path.

Each row keeps the time, a hash of the input, its length, the prediction and its
confidence, and a 32-number random projection ("sketch") of the sentence vector, enough
for ``fintune monitor`` to test embedding drift without keeping the text. The text itself
is stored only when ``serve.log.raw_text`` is on.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fintune.errors import FintuneError

SKETCH_DIM = 32
_SKETCH_SEED = 20261129

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    request_id TEXT NOT NULL,
    input_hash TEXT,
    n_chars INTEGER,
    n_tokens INTEGER,
    label TEXT,
    confidence REAL,
    value REAL,
    sketch BLOB,
    text TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"""


def sketch(vectors: np.ndarray) -> np.ndarray:
    """A fixed Gaussian random projection to 32 dimensions (Johnson-Lindenstrauss): distances,
    and so drift statistics, survive; the words do not. Same matrix for the same width."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors @ _projection(vectors.shape[1])


@functools.lru_cache(maxsize=8)
def _projection(width: int) -> np.ndarray:
    rng = np.random.default_rng(_SKETCH_SEED + width)
    return rng.standard_normal((width, SKETCH_DIM)).astype(np.float32) / np.sqrt(SKETCH_DIM)


def input_hash(value: str | dict, key: bytes | None) -> str | None:
    """HMAC-SHA256 of the text (or of the row as sorted JSON) under ``key``; None without a key.

    Keyed, so that someone holding the log cannot test whether a guessed text was sent (a
    plain SHA-256 of a short text is found by hashing guesses). Equal inputs still share a
    hash under one key, which is what finding repeats needs.
    """
    if key is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class Record:
    """One prediction as logged."""

    request_id: str
    input_hash: str | None
    n_chars: int | None
    n_tokens: int | None
    label: str | None
    confidence: float | None
    value: float | None
    sketch: np.ndarray | None
    text: str | None


class PredictionLog:
    """Appends records from a background thread so a request never waits on the disk."""

    def __init__(self, path: str | Path, raw_text: bool = False, meta: dict[str, str] | None = None) -> None:
        """``meta`` (e.g. the served model's folder) is stored beside the rows for the monitor."""
        self.path, self.raw_text = Path(path), raw_text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[list[Record] | None] = queue.Queue()
        connection = sqlite3.connect(self.path)
        connection.execute("PRAGMA journal_mode=WAL")  # readers (monitor) never block the server
        connection.executescript(SCHEMA)
        connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list((meta or {}).items()))
        connection.commit()
        connection.close()
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, records: list[Record]) -> None:
        """Queue records; they are committed in the background, in order."""
        self._queue.put(records)

    def close(self) -> None:
        """Write everything queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _write_loop(self) -> None:
        connection = sqlite3.connect(self.path)
        while True:
            records = self._queue.get()
            if records is None:
                break
            rows = [(time.time(), r.request_id, r.input_hash, r.n_chars, r.n_tokens, r.label, r.confidence, r.value,
                     None if r.sketch is None else r.sketch.astype(np.float32).tobytes(),
                     r.text if self.raw_text else None) for r in records]
            connection.executemany(
                "INSERT INTO predictions (time, request_id, input_hash, n_chars, n_tokens, label, confidence,"
                " value, sketch, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            connection.commit()
        connection.close()


def read_log(path: str | Path, since: float | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The logged predictions (newer than ``since``, a Unix time), sketches as arrays, and the
    log's metadata."""
    path = Path(path)
    if not path.is_file():
        raise FintuneError(f"prediction log not found: {path} (the server writes it while serving)")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        frame = pd.read_sql_query("SELECT * FROM predictions WHERE time >= ? ORDER BY id", connection,
                                  params=(since or 0.0,))
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise FintuneError(f"{path} is not a fintune prediction log: {exc}") from None
    finally:
        connection.close()
    frame["sketch"] = [None if b is None else np.frombuffer(b, dtype=np.float32) for b in frame["sketch"]]
    return frame, meta
