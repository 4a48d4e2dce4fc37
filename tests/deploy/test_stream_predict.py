"""`fintune predict` streams its input: peak memory does not grow with the number of rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fintune import api
from fintune.errors import DataError
from tests.conftest import credit_frame

MEASURE = """
import resource, sys
from fintune import api
api.predict(sys.argv[1], sys.argv[2], sys.argv[3], show_progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak_mb(run: Path, source: Path, out: Path) -> int:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(run), str(source), str(out)], capture_output=True,
                          text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_peak_memory_is_flat_from_20k_to_200k_rows(credit_run: Path, tmp_path: Path) -> None:
    # Parquet (record batches); CSV goes through pandas' chunked reader, as the test below.
    suffix = ".parquet"
    small, large = credit_frame(20_000, seed=1), credit_frame(200_000, seed=2)
    paths = {}
    for name, frame in (("small", small), ("large", large)):
        paths[name] = tmp_path / f"{name}{suffix}"
        frame.to_parquet(paths[name], index=False)
    peak = {name: _peak_mb(credit_run, path, tmp_path / f"{name}_out.csv") for name, path in paths.items()}
    assert len(pd.read_csv(tmp_path / "large_out.csv")) == 200_000
    # Read whole, 200k rows would add ~100 MB over 20k (the table, its encoded features, the output).
    assert peak["large"] - peak["small"] < 40, peak


def test_a_bad_row_in_a_later_chunk_names_its_file_row_and_writes_nothing(text_run: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["acme beats"] * 5000})
    frame.loc[4321, "text"] = None
    frame.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match="row 4322"):
        api.predict(text_run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=1000, show_progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_input_is_one_clear_error(text_run: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        api.predict(text_run, tmp_path / "nope.csv", tmp_path / "out.csv", show_progress=False)
