"""``fintune pretrain`` end to end on the tiny in-process models: the held-out loss falls,
the output is a backbone that fine-tuning takes, the leakage guard works, a kill -9 resumes
to the same weights, and the corpus streams in flat memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fintune import api
from fintune.config import validate_pretrain
from fintune.errors import ConfigError, FintuneError
from tests.conftest import kill_at_first_checkpoint, sentiment_frame, write_config


def pretrain_config(tmp_path: Path, backbone: Path, source: Path, name: str = "pt", **extra: object) -> dict:
    raw = {"output_dir": str(tmp_path / name), "seed": 3, "backbone": str(backbone), "max_length": 16,
           "corpus": {"sources": [str(source)], "min_chars": 5, "validation_fraction": 0.1},
           "train": {"epochs": 4, "batch_size": 16, "lr": 2e-3, "precision": "fp32", "checkpoint_every": 0,
                     "warmup_fraction": 0.0, "early_stopping": None}}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


@pytest.fixture()
def corpus_csv(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.csv"
    sentiment_frame(500, seed=11)[["text"]].to_csv(path, index=False)
    return path


def test_masked_pretraining_lowers_the_loss_and_gives_a_backbone(tmp_path: Path, tiny_bert: Path,
                                                                  corpus_csv: Path, sentiment_csv: Path) -> None:
    valid = tmp_path / "valid.csv"
    frame = pd.read_csv(corpus_csv)
    frame.head(20).assign(label="positive").to_csv(valid, index=False)
    result = api.pretrain(pretrain_config(tmp_path, tiny_bert, corpus_csv, corpus={"exclude": [str(valid)]}),
                          show_progress=False)
    metrics = result.metrics
    assert metrics["objective"] == "mlm"
    assert metrics["validation"]["loss"] < metrics["before"]["loss"] - 0.5
    assert "has none" in metrics["head"]  # tiny_bert is a BertModel: no MLM head in the checkpoint
    report = json.loads((result.run_dir / "data_check.json").read_text())
    assert report["leakage_guard"]["excluded_exact"] >= 20
    model = result.model_dir
    assert {"config.json", "model.safetensors", "README.md", "pretraining.json"} <= {p.name for p in model.iterdir()}
    card = (model / "README.md").read_text()
    assert report["sources"][0]["sha256"] in card and "Leakage guard" in card
    assert not (result.run_dir / "corpus").exists() and not (result.run_dir / "checkpoint.pt").exists()
    # The pretrained folder is a backbone like any other.
    cfg = write_config(tmp_path / "ft.yaml", model, sentiment_csv, tmp_path / "ft",
                       train={"epochs": 10, "eval_every": 10, "early_stopping": {"patience": 5}})
    tuned = api.train(cfg, show_progress=False)
    assert tuned.metrics["validation"]["accuracy"] > 0.8


def test_causal_pretraining(tmp_path: Path, tiny_llama: Path, corpus_csv: Path) -> None:
    result = api.pretrain(pretrain_config(tmp_path, tiny_llama, corpus_csv), show_progress=False)
    assert result.metrics["objective"] == "causal"
    assert result.metrics["validation"]["loss"] < result.metrics["before"]["loss"] - 0.5
    from transformers import AutoModelForCausalLM
    AutoModelForCausalLM.from_pretrained(result.model_dir)


def test_an_encoder_without_a_mask_token_is_refused(tmp_path: Path, tiny_llama: Path, corpus_csv: Path) -> None:
    with pytest.raises(ConfigError, match="no mask token"):
        api.pretrain(pretrain_config(tmp_path, tiny_llama, corpus_csv, objective="mlm"), show_progress=False)


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="unknown key 'corpus.exclud'"):
        validate_pretrain({"corpus": {"sources": ["x"], "exclud": ["y"]}})
    with pytest.raises(ConfigError, match="pretraining has none"):
        validate_pretrain({"corpus": {"sources": ["x"]}, "train": {"oversample": True}})
    with pytest.raises(ConfigError, match="must not exceed 1"):
        validate_pretrain({"corpus": {"sources": ["x"]}, "masking": {"replace_mask": 0.9, "replace_random": 0.2}})


def test_a_bad_corpus_leaves_no_run_folder(tmp_path: Path, tiny_bert: Path) -> None:
    with pytest.raises(FintuneError, match="not found"):
        api.pretrain(pretrain_config(tmp_path, tiny_bert, tmp_path / "missing.csv"), show_progress=False)
    assert not (tmp_path / "pt").exists()
    assert not [p for p in tmp_path.iterdir() if "corpus-partial" in p.name]


def test_kill_then_resume_gives_the_same_weights(tmp_path: Path, tiny_bert: Path, corpus_csv: Path) -> None:
    train = {"epochs": 3, "checkpoint_every": 5}
    killed = pretrain_config(tmp_path, tiny_bert, corpus_csv, name="killed", train=train)
    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(killed), encoding="utf-8")
    kill_at_first_checkpoint(["pretrain", str(config), "--no-progress"], tmp_path / "killed" / "checkpoint.pt")
    resumed = api.pretrain(config, resume=True, show_progress=False)
    reference = api.pretrain(pretrain_config(tmp_path, tiny_bert, corpus_csv, name="ref", train=train),
                             show_progress=False)
    assert resumed.metrics["training"]["resumed_from_step"] >= 5
    assert resumed.metrics["validation"] == reference.metrics["validation"]
    history = lambda d: [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert history(resumed.run_dir) == history(reference.run_dir)


RSS_SCRIPT = """
import resource, sys
from fintune.config import validate_pretrain
from fintune.data.blocks import BlockLayout, BlockWriter, pack
from fintune.data.corpus import Corpus, is_held_out
from transformers import AutoTokenizer
from pathlib import Path
tok = AutoTokenizer.from_pretrained(sys.argv[1])
cfg = validate_pretrain({"corpus": {"sources": [sys.argv[2]], "min_chars": 5}}).corpus
out = Path(sys.argv[3])
layout = BlockLayout.for_tokenizer(tok, 32, False)
writers = (BlockWriter(out / "train", layout), BlockWriter(out / "validation", layout))
pack(Corpus(cfg), tok, writers, lambda t: is_held_out(t, 0.02))
store = writers[0].close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, store.tokens)
"""


def test_memory_stays_flat_as_the_corpus_grows(tmp_path: Path, tiny_bert: Path) -> None:
    """Peak memory of reading and packing a corpus 8x larger grows by far less than the corpus."""
    peaks, sizes = [], []
    for factor in (1, 8):
        corpus = tmp_path / f"corpus{factor}.txt"
        with open(corpus, "w", encoding="utf-8") as fh:
            for i in range(4000 * factor):
                # Distinct paragraphs (deduplication would drop repeats), blank-line separated.
                fh.write(f"acme beats the quarter {i} globex misses guidance {i * 7} initech holds shares\n\n")
        sizes.append(corpus.stat().st_size)
        out = tmp_path / f"blocks{factor}"
        out.mkdir()
        done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(tiny_bert), str(corpus), str(out)],
                              capture_output=True, text=True, check=True)
        peak_kb, tokens = map(int, done.stdout.split()[-2:])
        peaks.append(peak_kb * 1024)
        assert tokens > 0
    grown = peaks[1] - peaks[0]
    # The 8x corpus is ~38 MB more text; dedup hashes cost ~100 bytes per text (~5 MB here).
    assert grown < 0.35 * (sizes[1] - sizes[0]), (peaks, sizes)


def test_two_processes_pretrain_in_sync(tmp_path: Path, tiny_bert: Path, corpus_csv: Path) -> None:
    config = tmp_path / "ddp.yaml"
    raw = pretrain_config(tmp_path, tiny_bert, corpus_csv, name="ddp",
                          train={"epochs": 1, "max_steps": 4, "batch_size": 16})
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "fintune", "pretrain", str(config), "--nproc", "2", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["training"]["processes"] == 2 and metrics["training"]["ranks_in_sync"] is True
    assert metrics["training"]["global_step"] == 4
    assert (tmp_path / "ddp" / "model" / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if "corpus-partial" in p.name]  # each process cleaned up
