"""/v1/predict/files on the real server: scans uploaded, read and scored as /v1/predict scores text."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.data.ingest.conftest import render
from tests.deploy.conftest import API_KEY, Server, start_server

pytest.importorskip("rapidocr_onnxruntime")
KEY = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def upload_server(text_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("upload")
    srv = start_server(text_run, tmp, env={"FINTUNE_HOME": str(tmp / "home")}, max_upload_bytes=400_000)
    yield srv
    srv.stop()


def _files(tmp: Path, *names_texts: tuple[str, str | bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    out = []
    for name, content in names_texts:
        data = content if isinstance(content, bytes) else render(content, tmp / name).read_bytes()
        out.append(("files", (name, data)))
    return out


def test_uploaded_scans_are_read_and_scored_like_their_text(upload_server: Server, tmp_path: Path) -> None:
    files = _files(tmp_path, ("up.png", "shares rally after strong earnings"), ("torn.png", b"\x89PNG torn"),
                   ("down.png", "profit warning and weak guidance"))
    answer = httpx.post(f"{upload_server.url}/v1/predict/files", files=files, headers=KEY, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    up, torn, down = body["files"]
    assert [up["file"], torn["file"], down["file"]] == ["up.png", "torn.png", "down.png"]
    assert "UnidentifiedImageError" in torn["error"] and "prediction" not in torn
    assert up["kind"] == "image" and up["confidence"] > 0.9 and body["request_id"]
    # The same text sent to /v1/predict gets the same prediction.
    direct = httpx.post(f"{upload_server.url}/v1/predict", json={"texts": [up["text"], down["text"]]}, headers=KEY,
                        timeout=30).json()["predictions"]
    assert [up["prediction"], down["prediction"]] == direct


@pytest.mark.parametrize("case", ["no_key", "type", "too_large", "too_many"])
def test_uploads_are_refused_with_a_json_error_that_names_the_limit(upload_server: Server, tmp_path: Path,
                                                                     case: str) -> None:
    files = _files(tmp_path, ("a.png", "record profit"))
    headers = KEY
    if case == "no_key":
        headers = {}
    elif case == "type":
        files = [("files", ("macro.exe", b"MZ"))]
    elif case == "too_large":
        files = [("files", ("big.png", io.BytesIO(b"0" * 500_000).getvalue()))]
    elif case == "too_many":
        files = files * 9
    answer = httpx.post(f"{upload_server.url}/v1/predict/files", files=files, headers=headers, timeout=60)
    status, words = {"no_key": (401, "API key"), "type": (415, "macro.exe"), "too_large": (413, "max_upload_bytes"),
                     "too_many": (422, "max_texts")}[case]
    assert answer.status_code == status and words in answer.json()["error"]
