"""Helpers for the data tests: every file is written into tmp_path by the test itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fintune.config import DataConfig


@pytest.fixture
def write_csv(tmp_path: Path):
    """write_csv(name, frame_or_text) -> path; a str is written as raw CSV text."""

    def write(name: str, data: pd.DataFrame | str) -> str:
        path = tmp_path / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            data.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
        return str(path)

    return write


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """write_jsonl(name, records) -> path, one JSON object per line."""

    def write(name: str, records: list[dict[str, Any]]) -> str:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def make_cfg():
    """make_cfg(train, **fields) -> DataConfig; text_column defaults to 'text'."""

    def make(train: str, **kwargs: Any) -> DataConfig:
        if "feature_columns" not in kwargs:
            kwargs.setdefault("text_column", "text")
        return DataConfig(train=train, **kwargs)

    return make
