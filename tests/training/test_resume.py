"""kill -9 in the middle of training, then --resume: the same final metrics as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

from fintune import api
from tests.conftest import kill_at_first_checkpoint, sentiment_frame, write_config


def test_resume_after_kill_matches_uninterrupted_run(tiny_bert: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    sentiment_frame(600, seed=4).to_csv(train, index=False)
    # Dropout on, so the restored random state matters too.
    sections = {"train": {"epochs": 3, "eval_every": 10, "checkpoint_every": 7, "batch_size": 16}}
    ref_cfg = write_config(tmp_path / "ref.yaml", tiny_bert, train, tmp_path / "ref", **sections)
    cfg = write_config(tmp_path / "killed.yaml", tiny_bert, train, tmp_path / "killed", **sections)

    kill_at_first_checkpoint(["train", str(cfg), "--no-progress"], tmp_path / "killed" / "checkpoint.pt")
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = api.train(cfg, resume=True, show_progress=False)
    reference = api.train(ref_cfg, show_progress=False)

    assert resumed.metrics["training"]["resumed_from_step"] >= 7
    for split in ("validation", "test"):
        assert resumed.metrics[split] == reference.metrics[split]
    history = lambda d: [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert history(resumed.run_dir) == history(reference.run_dir)
    assert resumed.metrics["training"]["global_step"] == reference.metrics["training"]["global_step"]
