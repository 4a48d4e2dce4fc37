"""Data: read, validate, clean, dedup and split examples, and report on them.

- :mod:`~fintune.data.load` reads files; :mod:`~fintune.data.columns` maps columns to model
  input (training and prediction alike); :mod:`~fintune.data.labels` parses labels;
- :mod:`~fintune.data.prepare` runs the training pipeline into :class:`PreparedData`;
- :mod:`~fintune.data.batching` pads and batches encoded rows for the models and the loop.
"""

from fintune.data.clean import clean_text, serialize_row
from fintune.data.columns import frame_to_texts
from fintune.data.examples import Examples, PreparedData
from fintune.data.load import read_table
from fintune.data.prepare import load_examples, prepare_data
from fintune.data.report import print_report

__all__ = [
    "Examples", "PreparedData", "clean_text", "frame_to_texts", "load_examples",
    "prepare_data", "print_report", "read_table", "serialize_row",
]
