"""The README and the docs site: short README, its results table read from the result files,
the site built with --strict, every benchmark and config on a page, three pages in a browser."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert found, f"README.md lost its '## {title}' section"
    return found.group(1)


def test_the_readme_fits_on_a_few_screens_and_keeps_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_every_number_of_the_readme_results_is_in_a_linked_result_file() -> None:
    rows = [line for line in _section("Results").splitlines() if line.startswith("| ") and "benchmarks/" in line]
    assert len(rows) >= 5
    for row in rows:
        names = re.findall(r"docs/benchmarks/(\w+)\.md", row)
        known = [x for name in names for x in _numbers(json.loads(
            (ROOT / "benchmarks" / "results" / f"{name}.json").read_text(encoding="utf-8")))]
        cells = row.split("|")[3:5]  # fintune's and the baseline's cells
        for number in re.findall(r"\b0\.\d{3}\b", " ".join(cells)):
            assert any(abs(x - float(number)) <= 0.0005 + 1e-9 for x in known), \
                f"{number} in README row {row[:60]!r} is in none of {names}"


def test_every_number_in_a_benchmark_page_table_is_in_a_result_file() -> None:
    """The benchmark pages' own tables (written with their commentary) are checked against the
    files the scripts wrote, so a retyped number that drifts fails; each page also ends with its
    file's every row, generated at build time."""
    known = [x for path in (ROOT / "benchmarks" / "results").glob("*.json")
             for x in _numbers(json.loads(path.read_text(encoding="utf-8")))]
    wrong = []
    for page in sorted((ROOT / "docs" / "benchmarks").glob("*.md")):
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("|"):
                wrong += [f"{page.name}:{number}: {x}" for x in re.findall(r"(?<![\d.])0\.\d{3}(?!\d)", line)
                          if not any(abs(k - float(x)) <= 0.0005 + 1e-9 for k in known)]
    assert wrong == []


def test_every_result_file_has_a_benchmark_page_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        page = ROOT / "docs" / "benchmarks" / f"{path.stem}.md"
        assert page.exists() and f"<!-- fintune:results {path.stem} -->" in page.read_text(encoding="utf-8")
        assert f"benchmarks/{path.stem}.md" in nav


def test_every_page_is_in_the_nav() -> None:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", ""))["nav"]
    listed: set[str] = set()

    def walk(item: object) -> None:
        if isinstance(item, str):
            listed.add(item)
        elif isinstance(item, dict):
            for v in item.values():
                walk(v)
        elif isinstance(item, list):
            for v in item:
                walk(v)

    walk(nav)
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra builds the site")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_site_builds_strict_with_the_generated_references(site: Path) -> None:
    fields = (site / "reference" / "config-fields.html").read_text(encoding="utf-8")
    assert "label_separator" in fields and "model (kind: causal)" in fields and "strategy (name: lora)" in fields
    assert "fintune train" in (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "FintuneModel" in (site / "reference" / "api.html").read_text(encoding="utf-8")
    configs = (site / "reference" / "configs.html").read_text(encoding="utf-8")
    assert all(p.relative_to(ROOT).as_posix() in configs for p in (ROOT / "configs").rglob("*.yaml"))


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP, as a docs server gives it (the search index loads in a worker, which
    browsers refuse for file:// pages)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
@pytest.mark.parametrize("page, expect", [("index.html", "Results"),
                                          ("benchmarks/text_models.html", "benchmarks/results/text_models.json"),
                                          ("reference/config-fields.html", "label_thresholds")])
def test_a_page_renders_in_chromium(served: str, page: str, expect: str) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{served}/{page}")
        text = tab.inner_text("article")
        tables = tab.eval_on_selector_all("article table", "els => els.length")
        browser.close()
    assert expect in text
    assert tables >= 1
    assert errors == []
