"""read_table: each format, text kept as text, and a clear DataError for each bad input."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pandas as pd
import pytest

from fintune.data import read_table
from fintune.errors import DataError

FRAME = pd.DataFrame({"text": ["0012", "Revenue up 5%", "Shares fell"], "label": [1, 0, 2]})


# ---------------------------------------------------------------- formats


def test_csv_keeps_digit_strings_as_text(write_csv):
    path = write_csv("train.csv", "text,label\n0012,1\nRevenue up,0\n")
    frame = read_table(path)
    assert frame["text"].tolist() == ["0012", "Revenue up"]
    assert frame["label"].tolist() == ["1", "0"]


def test_csv_reads_na_words_as_text_and_empty_cells_as_missing(write_csv):
    path = write_csv("train.csv", "text,label\nNA,1\nNone,0\n,1\n")
    frame = read_table(path)
    assert frame["text"].tolist()[:2] == ["NA", "None"]
    assert pd.isna(frame["text"].iloc[2])


def test_tsv_is_tab_separated(write_csv):
    path = write_csv("train.tsv", FRAME)
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["0012", "Revenue up 5%", "Shares fell"]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nhello,1\n")
    assert list(read_table(str(path)).columns) == ["text", "label"]


def test_jsonl_keeps_types_and_skips_blank_lines(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "0012", "label": 1}\n\n{"text": 5, "label": 0}\n', encoding="utf-8")
    frame = read_table(str(path))
    assert len(frame) == 2
    assert frame["text"].tolist() == ["0012", 5]  # the int stays an int so validation can catch it


def test_json_suffix_reads_json_lines_and_arrays(tmp_path: Path):
    lines = tmp_path / "lines.json"
    lines.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n', encoding="utf-8")
    array = tmp_path / "array.json"
    array.write_text('[{"text": "a", "label": 1}, {"text": "b", "label": 0}]', encoding="utf-8")
    assert read_table(str(lines))["text"].tolist() == ["a", "b"]
    assert read_table(str(array))["text"].tolist() == ["a", "b"]


def test_parquet(tmp_path: Path):
    path = tmp_path / "train.parquet"
    FRAME.to_parquet(path)
    frame = read_table(str(path))
    assert frame["text"].tolist() == FRAME["text"].tolist()
    assert frame["label"].tolist() == [1, 0, 2]


def test_hf_disk_dataset_is_detected_from_the_folder(tmp_path: Path):
    folder = tmp_path / "ds"
    datasets.Dataset.from_pandas(FRAME).save_to_disk(str(folder))
    frame = read_table(str(folder))
    assert frame["text"].tolist() == FRAME["text"].tolist()
    assert read_table(str(folder), fmt="hf_disk")["label"].tolist() == [1, 0, 2]


def test_hf_disk_dataset_dict_split_selection(tmp_path: Path):
    folder = tmp_path / "dd"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_pandas(FRAME),
        "test": datasets.Dataset.from_pandas(FRAME.iloc[:1]),
    }).save_to_disk(str(folder))
    assert len(read_table(str(folder))) == 3  # default split: train
    assert read_table(f"{folder}#test")["text"].tolist() == ["0012"]
    with pytest.raises(DataError) as err:
        read_table(f"{folder}#validation")
    message = str(err.value)
    assert "no split 'validation'" in message and "train, test" in message


def test_hf_disk_single_dataset_rejects_split_suffix(tmp_path: Path):
    folder = tmp_path / "ds"
    datasets.Dataset.from_pandas(FRAME).save_to_disk(str(folder))
    with pytest.raises(DataError, match="not a DatasetDict"):
        read_table(f"{folder}#train")


def test_hub_passes_id_and_split(monkeypatch):
    calls = []

    def fake_load_dataset(dataset_id, split):
        calls.append((dataset_id, split))
        return datasets.Dataset.from_pandas(FRAME)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert len(read_table("org/phrasebank#validation", fmt="hub")) == 3
    read_table("org/phrasebank", fmt="hub")
    assert calls == [("org/phrasebank", "validation"), ("org/phrasebank", "train")]


def test_hub_failure_says_to_pass_a_local_file(monkeypatch):
    def offline(dataset_id, split):
        raise ConnectionError("Couldn't reach 'org/phrasebank' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        read_table("org/phrasebank", fmt="hub")
    message = str(err.value)
    assert "org/phrasebank" in message
    assert "Hub could not be reached or the dataset was not found" in message
    assert "local file" in message


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(DataError) as err:
        read_table(path)
    assert "file not found" in str(err.value)
    assert err.value.file == path and "nope.csv" in str(err.value)


def test_missing_file_that_looks_like_a_hub_id_suggests_format_hub():
    with pytest.raises(DataError, match="data.format: hub"):
        read_table("takala/financial_phrasebank_missing_here")


def test_undecodable_bytes_give_offset_and_encoding_fix(tmp_path: Path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nCaf".encode() + b"\xe9 prices,1\n")
    with pytest.raises(DataError) as err:
        read_table(str(path))
    message = str(err.value)
    assert "latin.csv" in message
    assert "byte offset 14" in message and "line 2" in message
    assert "data.encoding" in message and "encoding: latin-1" in message
    # ...and the suggested fix works.
    assert read_table(str(path), encoding="latin-1")["text"].tolist() == ["Café prices"]


def test_unknown_encoding_name(write_csv):
    path = write_csv("train.csv", "text,label\na,1\n")
    with pytest.raises(DataError, match="unknown encoding 'utf-42'.*data.encoding"):
        read_table(path, encoding="utf-42")


def test_unparseable_csv_names_the_line(write_csv):
    path = write_csv("broken.csv", "text,label\na,1\nb,2,extra\n")
    with pytest.raises(DataError) as err:
        read_table(path)
    message = str(err.value)
    assert "broken.csv" in message and "could not parse the file as CSV" in message
    assert "line 3" in message and "quoted" in message


def test_invalid_json_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b" "label": 0}\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_table(str(path))
    assert "bad.jsonl" in str(err.value) and "line 2 is not valid JSON" in str(err.value)


def test_json_line_that_is_not_an_object(tmp_path: Path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a", "label": 1}\n["a", 1]\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2 holds a JSON list, not an object"):
        read_table(str(path))


def test_corrupt_parquet(tmp_path: Path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="bad.parquet.*could not read the file as Parquet"):
        read_table(str(path))


@pytest.mark.parametrize("content, phrase", [
    ("", "the file is empty"),
    ("text,label\n", "no data rows"),
])
def test_csv_without_rows(write_csv, content, phrase):
    path = write_csv("empty.csv", content)
    with pytest.raises(DataError) as err:
        read_table(path)
    assert phrase in str(err.value) and "empty.csv" in str(err.value)


def test_jsonl_without_rows(tmp_path: Path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.jsonl.*no data rows"):
        read_table(str(path))


def test_unknown_suffix_says_to_set_data_format(write_csv):
    path = write_csv("train.txt", "text,label\na,1\n")
    with pytest.raises(DataError) as err:
        read_table(path)
    message = str(err.value)
    assert "train.txt" in message and "'.txt'" in message and "set data.format" in message
    assert read_table(path, fmt="csv")["text"].tolist() == ["a"]  # the fix works


def test_folder_that_is_not_a_dataset(tmp_path: Path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataError, match="not a dataset saved with datasets' save_to_disk"):
        read_table(str(tmp_path / "notes"))


def test_unknown_format_value(write_csv):
    path = write_csv("train.csv", "text,label\na,1\n")
    with pytest.raises(DataError, match="unknown data format 'xlsx'"):
        read_table(path, fmt="xlsx")


def test_file_with_hash_in_its_name_is_read_as_is(write_csv):
    path = write_csv("q#1.csv", "text,label\na,1\n")
    assert os.path.exists(path)
    assert read_table(path)["text"].tolist() == ["a"]


def test_a_json_array_of_arrays_reads_its_columns_by_position(tmp_path) -> None:
    import json

    import pytest

    from fintune.data.load import read_table
    from fintune.errors import DataError

    path = tmp_path / "finfe.json"
    path.write_text(json.dumps([["钼已成粥", 1], ["补仓补的心力憔悴", 0]], ensure_ascii=False), encoding="utf-8")
    table = read_table(str(path))
    assert table.columns.tolist() == ["0", "1"] and table["0"].tolist() == ["钼已成粥", "补仓补的心力憔悴"]
    path.write_text(json.dumps([["a", 1], ["b"]]), encoding="utf-8")
    with pytest.raises(DataError, match="item 2 holds 1 values where the first holds 2"):
        read_table(str(path))
