"""The board end to end in headless Chromium (Playwright): upload, check, train, predict, errors."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.conftest import assert_rendered, sentiment_frame

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def board_url(tmp_path: Path):
    from fintune.board import launch

    port = free_port()
    demo = launch(tmp_path / "runs", port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def fill(page, elem_id: str, value: object) -> None:
    page.locator(f"#{elem_id} input, #{elem_id} textarea").first.fill(str(value))


def upload(page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))


def test_board_end_to_end(board_url: str, tmp_path: Path, tiny_bert: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    good = tmp_path / "news.csv"
    sentiment_frame(240).to_csv(good, index=False)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(board_url)

        # Data: upload, columns found, the data check passes.
        upload(page, good)
        expect(page.locator("#data-status")).to_contain_text("2 columns: text, label", timeout=30_000)
        page.locator("#check-data").click()
        expect(page.locator("#data-status")).to_contain_text("data check passed", timeout=60_000)
        expect(page.locator("#data-report")).to_contain_text("duplicates removed")
        page.screenshot(path=str(shots / "data.png"), full_page=True)

        # Train the tiny model; the page follows the worker process to the end.
        page.get_by_role("tab", name="Train").click()
        for elem_id, value in (("run-name", "e2e"), ("backbone", tiny_bert), ("epochs", 8), ("batch-size", 16),
                               ("lr", 0.003), ("max-length", 32)):
            fill(page, elem_id, value)
        page.get_by_role("button", name="Show YAML").click()
        expect(page.locator(".cm-content")).to_contain_text("text_column: text", timeout=30_000)
        page.locator("#start").click()
        expect(page.locator("#train-status")).to_contain_text("started e2e", timeout=30_000)
        expect(page.locator("#run-status")).to_have_text("finished", timeout=180_000)
        expect(page.locator("#progress")).to_contain_text("step")
        page.screenshot(path=str(shots / "train.png"), full_page=True)

        # Runs: the run is listed with its metric.
        page.get_by_role("tab", name="Runs").click()
        page.get_by_role("button", name="Refresh").first.click()
        expect(page.locator("#runs-table")).to_contain_text("e2e", timeout=30_000)
        page.screenshot(path=str(shots / "runs.png"), full_page=True)

        # Try it: the newest finished run is chosen; a clearly positive headline.
        page.get_by_role("tab", name="Try it").click()
        page.locator("#try-refresh").click()
        # The refreshed choice arrives from the server; a click before it would predict with no run.
        expect(page.locator("#try-run input")).to_have_value("e2e", timeout=30_000)
        fill(page, "try-text", "acme beats record profit")
        page.locator("#predict").click()
        expect(page.locator("#try-status")).to_contain_text("predicted", timeout=60_000)
        expect(page.locator("#prediction")).to_contain_text("positive")
        page.screenshot(path=str(shots / "try.png"), full_page=True)
        page.get_by_role("tab", name="Deploy").click()
        expect(page.get_by_role("button", name="Export ONNX")).to_be_visible()
        page.screenshot(path=str(shots / "deploy.png"), full_page=True)

        # Bad uploads show an error in the page, and the app keeps working afterwards.
        page.get_by_role("tab", name="Data").click()
        wrong = tmp_path / "wrong.csv"
        wrong.write_text("headline,sentiment\nacme beats,positive\nglobex misses,negative\n")
        empty = tmp_path / "empty.csv"
        empty.write_text("")
        latin = tmp_path / "latin.csv"
        latin.write_bytes("text,label\ncaf\xe9 beats,positive\n".encode("latin-1"))
        upload(page, wrong)
        expect(page.locator("#data-status")).to_contain_text("headline, sentiment", timeout=30_000)
        page.locator("#check-data").click()
        expect(page.locator("#data-status")).to_contain_text("error", timeout=30_000)
        for bad, message in ((empty, "error"), (latin, "error")):
            upload(page, bad)
            expect(page.locator("#data-status")).to_contain_text(message, timeout=30_000)
        page.screenshot(path=str(shots / "errors.png"), full_page=True)
        upload(page, good)
        expect(page.locator("#data-status")).to_contain_text("2 columns: text, label", timeout=30_000)
        page.locator("#check-data").click()
        expect(page.locator("#data-status")).to_contain_text("data check passed", timeout=60_000)
        browser.close()
    assert not errors, errors
    assert sorted(p.name for p in shots.iterdir()) == ["data.png", "deploy.png", "errors.png", "runs.png",
                                                        "train.png", "try.png"]
    for shot in shots.iterdir():
        assert_rendered(shot)
    assert (tmp_path / "runs" / "e2e" / "model" / "fintune.json").exists()
