"""Scans and calls: OCR and speech-to-text through data.files, measured against the clean text.

No labelled scans or recordings are available here, so they are made, and the rows say how:
- Pages: FIN3 (the SEC filings NER test file) sentences, detokenized, rendered as a strip of
  page at 11 pt in four fonts (DejaVu and Liberation, sans and serif). ``300dpi``: clean at
  300 dpi. ``degraded``: 150-200 dpi, Gaussian blur, noise, a rotation of up to 2 degrees and
  JPEG compression at quality 35-60.
- Calls: TFNS validation tweets (URLs removed, cashtags as words) spoken by espeak-ng in two
  voices at two speeds, white noise at 20 dB SNR added to every other one.
Rows:
- ``ocr_ENGINE_SET``: character and word error rate (jiwer; whitespace runs as one space),
  seconds per page on this machine's 2 cores, the mean OCR confidence.
- ``ner_*``: a fintune tagger (MiniLM + CRF, trained here on FIN5 as benchmarks/ner_sec.py's
  full_crf row) on the clean sentence and on each OCR text: entity F1 against the gold entities,
  entities matched by type and text with spaces removed (OCR's dropped spaces are not counted
  twice), and the share of predicted entities located on the page (a box) through the reading.
- ``asr_whisper_base``: word error rate and seconds per audio minute.
- ``sentiment_*``: a fintune MiniLM classifier trained on TFNS on the clean tweets and on the
  transcripts of the same tweets: weighted F1.
Needs Debian's tesseract-ocr, espeak-ng and the DejaVu and Liberation fonts, the `bench` extra
(jiwer) and `fintune models fetch whisper-base`.
Targets (issue 37): CER <= 2% at 300 dpi, <= 5% degraded; NER F1 on OCR within 3 points of
clean; sentiment on transcripts within 3 points of clean.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from common import print_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SEC, TFNS = DATA / "sec_filings_ner", DATA / "twitter_financial_news_sentiment"
RESULT = ROOT / "benchmarks" / "results" / "documents.json"
WORK = ROOT / "runs" / "bench_documents"
FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"]
VOICES = [("en-us+m3", 150), ("en-us+m3", 175), ("en-gb", 150), ("en-gb", 175)]
KEYS = ["cer", "wer", "entity_f1", "located_share", "weighted_f1", "items", "seconds_per_page",
        "seconds_per_audio_minute", "mean_confidence"]


def sentences(limit: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """FIN3's sentences with at least one entity, detokenized, and their gold (type, text)."""
    out, tokens, tags = [], [], []
    for line in [*(SEC / "FIN3.txt").read_text(encoding="utf-8").splitlines(), ""]:
        parts = line.split()
        if parts and parts[0] != "-DOCSTART-":
            tokens.append(parts[0])
            tags.append(parts[-1])
            continue
        if tokens and any(t != "O" for t in tags) and 8 <= len(tokens) <= 45:
            entities, current = [], None
            for token, tag in zip(tokens, tags):
                kind = tag[2:] if tag != "O" else None
                if kind and current and current[0] == kind:
                    current[1].append(token)
                else:
                    if current:
                        entities.append((current[0], " ".join(current[1])))
                    current = (kind, [token]) if kind else None
            if current:
                entities.append((current[0], " ".join(current[1])))
            out.append((detokenize(tokens), entities))
        tokens, tags = [], []
    return out[:limit]


def detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([,.;:%)\]'])", r"\1", text)
    return re.sub(r"([(\[$]) ", r"\1", text)


def render_page(text: str, path: Path, dpi: int, font_file: str, degrade: random.Random | None) -> None:
    """``text`` wrapped at 11 pt across a 6.5-inch text column, with 1-inch margins."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(font_file, round(11 / 72 * dpi))
    width, margin = int(8.5 * dpi), dpi
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if font.getlength(trial) > width - 2 * margin and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    step = round(11 / 72 * dpi * 1.5)
    image = Image.new("L", (width, 2 * margin + step * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, text_line in enumerate(lines):
        draw.text((margin, margin + i * step), text_line, fill=0, font=font)
    if degrade is not None:
        image = image.filter(ImageFilter.GaussianBlur(degrade.uniform(0.5, 1.1)))
        image = image.rotate(degrade.uniform(-2, 2), expand=True, fillcolor=255, resample=Image.BICUBIC)
        noisy = np.asarray(image, dtype=np.float32) + np.random.default_rng(degrade.randrange(1 << 30)).normal(
            0, 12, (image.height, image.width))
        image = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
        image.save(path.with_suffix(".jpg"), quality=degrade.randrange(35, 61))
    else:
        image.save(path)


def pages(items: list[tuple[str, Any]], name: str) -> list[Path]:
    """The rendered pages of a set, made once (kept under runs/bench_documents); page i's
    font, resolution and damage depend on i alone."""
    out = []
    for i, (text, _) in enumerate(items):
        rng = random.Random(1000 + i)
        degrade = rng if name == "degraded" else None
        path = WORK / name / f"{i:03d}.png"
        final = path.with_suffix(".jpg") if degrade else path
        if not final.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            render_page(text, path, rng.choice([150, 200]) if degrade else 300, FONTS[i % len(FONTS)], degrade)
        out.append(final)
    return out


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    import jiwer

    norm = lambda s: " ".join(s.split())  # noqa: E731 - line breaks and space runs count as one space
    refs, hyps = [norm(r) for r in references], [norm(h) for h in hypotheses]
    return {"cer": round(jiwer.cer(refs, hyps), 4), "wer": round(jiwer.wer(refs, hyps), 4)}


def read(paths: list[Path], **settings: Any) -> tuple[list[Any], float]:
    """Each file through fintune's own reader (data.files), timed without the cache."""
    from fintune.config import FilesConfig
    from fintune.data.ingest import ReadingCache, read_file

    cache = ReadingCache(WORK / "cache")
    readings = [read_file(p, FilesConfig(**settings), cache) for p in paths]
    failed = [r for r in readings if r.error]
    if failed:
        raise SystemExit(f"{len(failed)} files could not be read: {failed[0].file}: {failed[0].error}")
    return readings, sum(r.seconds for r in readings)


def ocr_rows(items: list[tuple[str, Any]]) -> tuple[dict[str, dict], dict[str, list[Any]]]:
    rows, readings = {}, {}
    for engine in ("rapidocr", "tesseract"):
        for name in ("300dpi", "degraded"):
            found, seconds = read(pages(items, name), ocr=engine)
            confidences = [r.confidence for r in found if r.confidence is not None]
            rows[f"ocr_{engine}_{name}"] = {
                **error_rates([t for t, _ in items], [r.text for r in found]), "items": len(found),
                "seconds_per_page": round(seconds / len(found), 2),
                "mean_confidence": round(float(np.mean(confidences)), 4) if confidences else None}
            readings[f"{engine}_{name}"] = found
            print(f"ocr {engine} {name}: {rows[f'ocr_{engine}_{name}']}", flush=True)
    return rows, readings


def _train(name: str, raw: dict[str, Any]) -> Path:
    """A run trained once and kept (runs/bench_documents/NAME)."""
    from fintune import api
    from fintune.config import validate_config

    run = WORK / name
    if (run / "metrics.json").exists():
        return run
    return api.train(validate_config({**raw, "output_dir": str(run)}), overwrite=True, show_progress=False).run_dir


def _predict(run: Path, texts: list[str], out: Path) -> list[dict[str, Any]]:
    import pandas as pd

    from fintune import api

    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts}).to_csv(out.with_suffix(".in.csv"), index=False)
    api.predict(run, out.with_suffix(".in.csv"), out, show_progress=False)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def ner_rows(items: list[tuple[str, list[tuple[str, str]]]], readings: dict[str, list[Any]]) -> dict[str, dict]:
    from ner_sec import ner_config

    raw = ner_config("full_crf")
    raw.pop("output_dir")
    run = _train("ner_full_crf", raw)
    key = lambda kind, text: (kind, re.sub(r"\s+", "", text).lower())  # noqa: E731
    gold = [[key(k, t) for k, t in entities] for _, entities in items]
    sources = {"ner_clean_text": ([t for t, _ in items], None),
               **{f"ner_ocr_{name}": ([r.text for r in found], found) for name, found in readings.items()}}
    rows = {}
    for row, (texts, found) in sources.items():
        predicted = _predict(run, texts, WORK / "ner" / f"{row}.jsonl")
        tp = fp = fn = located = total = 0
        for i, record in enumerate(predicted):
            entities = record["entities"] if isinstance(record["entities"], list) else json.loads(record["entities"])
            guess = [key(e["type"], e["text"]) for e in entities]
            remaining = list(gold[i])
            for g in guess:
                if g in remaining:
                    remaining.remove(g)
                    tp += 1
                else:
                    fp += 1
            fn += len(remaining)
            if found is not None:
                total += len(entities)
                located += sum(bool(found[i].locate(e["start"], e["end"])) for e in entities)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        rows[row] = {"entity_f1": round(f1, 4), "items": len(texts), "gold_entities": tp + fn,
                     "located_share": round(located / total, 4) if total else None}
        print(f"{row}: {rows[row]}", flush=True)
    return rows


def speak(text: str, path: Path, voice: str, speed: int, noise: bool) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    if noise:
        with wave.open(str(path)) as src:
            params, frames = src.getparams(), src.readframes(src.getnframes())
        signal = np.frombuffer(frames, dtype="<i2").astype(np.float64)
        power = np.mean(signal ** 2) / 10 ** (20 / 10)  # 20 dB below the speech
        noisy = signal + np.random.default_rng(len(text)).normal(0, np.sqrt(power), signal.shape)
        with wave.open(str(path), "wb") as out:
            out.setparams(params)
            out.writeframes(noisy.clip(-32768, 32767).astype("<i2").tobytes())


def tweets(limit: int) -> list[tuple[str, int]]:
    import pandas as pd

    frame = pd.read_csv(TFNS / "sent_valid.csv").sample(frac=1.0, random_state=5)
    out = []
    for text, label in zip(frame["text"], frame["label"]):
        spoken = re.sub(r"https?://\S+", "", text)
        spoken = re.sub(r"\$([A-Za-z]+)", r"\1", spoken)
        spoken = " ".join(spoken.split())
        if len(spoken.split()) >= 4:
            out.append((spoken, int(label)))
    return out[:limit]


def speech_rows(items: list[tuple[str, int]]) -> dict[str, dict]:
    paths = []
    for i, (text, _) in enumerate(items):
        voice, speed = VOICES[i % len(VOICES)]
        path = WORK / "calls" / f"{i:03d}.wav"
        speak(text, path, voice, speed, noise=i % 2 == 1)
        paths.append(path)
    found, seconds = read(paths, language="en")
    minutes = sum(max(s.end or 0 for s in r.segments) if r.segments else 0 for r in found) / 60
    rows = {"asr_whisper_base": {**error_rates([t for t, _ in items], [r.text for r in found]), "items": len(found),
                                 "seconds_per_audio_minute": round(seconds / max(minutes, 1e-9), 1),
                                 "mean_confidence": round(float(np.mean([r.confidence or 0 for r in found])), 4)}}
    print(f"asr: {rows['asr_whisper_base']}", flush=True)
    run = _train("sentiment_minilm", {
        "task": "classification", "seed": 42,
        "data": {"train": str(TFNS / "sent_train.csv"), "text_column": "text", "label_column": "label",
                 "label_map": {"0": "Bearish", "1": "Bullish", "2": "Neutral"}, "clean": {"replace_urls": True}},
        "model": {"backbone": "minilm", "max_length": 64}, "train": {"epochs": 3, "checkpoint_every": 0}})
    from sklearn.metrics import f1_score

    names = ["Bearish", "Bullish", "Neutral"]
    truth = [names[label] for _, label in items]
    for row, texts in [("sentiment_clean_text", [t for t, _ in items]), ("sentiment_transcripts",
                                                                         [r.text for r in found])]:
        predicted = [r["predicted_label"] for r in _predict(run, texts, WORK / "sentiment" / f"{row}.jsonl")]
        rows[row] = {"weighted_f1": round(f1_score(truth, predicted, average="weighted"), 4), "items": len(texts)}
        print(f"{row}: {rows[row]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60, help="FIN3 sentences rendered per set")
    parser.add_argument("--calls", type=int, default=100, help="TFNS validation tweets spoken")
    parser.add_argument("--parts", default="ocr,ner,speech")
    args = parser.parse_args()
    parts = args.parts.split(",")
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    started = time.perf_counter()
    if "ocr" in parts or "ner" in parts:
        items = sentences(args.pages)
        rows, readings = ocr_rows(items)
        results.update(rows)
        if "ner" in parts:
            results.update(ner_rows(items, readings))
    if "speech" in parts:
        results.update(speech_rows(tweets(args.calls)))
    print(f"{time.perf_counter() - started:.0f} s in all on this machine's 2 cores", flush=True)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, KEYS, "row")


if __name__ == "__main__":
    main()
