"""Data preparation: read, validate, clean, dedup and split examples, and report on them."""

from fintune.data.clean import clean_text, serialize_row
from fintune.data.load import read_table
from fintune.data.prepare import (
    Examples, PreparedData, frame_to_texts, load_examples, prepare_data,
)
from fintune.data.report import print_report

__all__ = [
    "Examples", "PreparedData", "clean_text", "frame_to_texts", "load_examples",
    "prepare_data", "print_report", "read_table", "serialize_row",
]
