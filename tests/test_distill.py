"""Distillation: the loss, and a shallower student trained from a teacher run plus unlabeled text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fintune import api
from fintune.config import DistillConfig
from fintune.workflows.distill import DistillObjective, distill
from tests.conftest import sentiment_frame, write_config


def test_distill_loss_matches_its_definition() -> None:
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.5, 1.0]])
    obj = DistillObjective(np.array([0, -1]), teacher, DistillConfig(temperature=2.0, alpha=0.5))
    soft = torch.softmax(torch.log(torch.tensor(teacher)) / 2, dim=-1)
    kd = torch.nn.functional.kl_div(torch.log_softmax(logits / 2, -1), soft, reduction="batchmean") * 4
    ce = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0]))  # the unlabeled row has no CE
    assert obj(logits, np.array([0, 1])).item() == pytest.approx((0.5 * kd + 0.5 * ce).item(), rel=1e-5)
    # A student that reproduces the teacher exactly has zero soft loss.
    only_kd = DistillObjective(np.array([-1, -1]), teacher, DistillConfig(alpha=1.0))
    assert only_kd(torch.log(torch.tensor(teacher)), np.array([0, 1])).item() == pytest.approx(0, abs=1e-6)


def test_student_is_a_normal_smaller_run(tiny_bert: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    sentiment_frame(400, seed=1).to_csv(train, index=False)
    teacher_cfg = write_config(tmp_path / "t.yaml", tiny_bert, train, tmp_path / "teacher",
                               train={"epochs": 8, "early_stopping": {"patience": 4}})
    teacher = api.train(teacher_cfg, show_progress=False)
    unlabeled = tmp_path / "unlabeled.csv"
    sentiment_frame(100, seed=11).drop(columns="label").to_csv(unlabeled, index=False)

    student = distill(teacher.run_dir, str(tiny_bert), num_layers=1, unlabeled=unlabeled,
                      output_dir=str(tmp_path / "student"), overrides=["train.epochs=8"], show_progress=False)
    meta = json.loads((student.model_dir / "fintune.json").read_text())
    # The soft targets' origin, apart from the calibration temperature (format 2 of fintune.json).
    assert meta["distilled"] == {"teacher": str(teacher.run_dir), "temperature": 2.0, "alpha": 0.5}
    s_params, t_params = student.metrics["training"]["total_params"], teacher.metrics["training"]["total_params"]
    assert s_params < t_params
    assert json.loads((student.model_dir / "config.json").read_text())["num_hidden_layers"] == 1
    assert student.metrics["test"]["accuracy"] > 0.8
    report = json.loads((student.run_dir / "data_check.json").read_text())
    assert student.metrics["training"]["train_rows"] == report["rows"]["train"] + 100  # + unlabeled


def test_unlabeled_text_is_read_as_a_corpus_without_the_evaluation_texts(tiny_bert: Path, tmp_path: Path) -> None:
    frame = sentiment_frame(300, seed=2)
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    frame.iloc[:240].to_csv(train, index=False)
    frame.iloc[240:].to_csv(valid, index=False)
    teacher_cfg = write_config(tmp_path / "t.yaml", tiny_bert, train, tmp_path / "teacher",
                               data={"validation": str(valid), "split": {"test_size": 0.0}},
                               train={"epochs": 4})
    teacher = api.train(teacher_cfg, show_progress=False)
    notes = tmp_path / "notes"
    notes.mkdir()
    # 30 new texts, and 10 texts of the validation file (one in upper case): those must stay out.
    extra = list(sentiment_frame(30, seed=21)["text"])
    leaked = list(frame.iloc[240:250]["text"])
    leaked[0] = leaked[0].upper()
    (notes / "a.txt").write_text("\n\n".join(extra + leaked), encoding="utf-8")
    student = distill(teacher.run_dir, str(tiny_bert), num_layers=1, unlabeled=[notes],
                      output_dir=str(tmp_path / "student"), overrides=["train.epochs=2"], show_progress=False)
    report = json.loads((student.run_dir / "data_check.json").read_text())
    new = len(set(extra) - set(frame.iloc[240:]["text"]))  # deduplicated, validation texts left out
    assert student.metrics["training"]["train_rows"] == report["rows"]["train"] + new


def test_a_killed_distillation_resumes_with_its_teacher(tiny_bert: Path, tmp_path: Path, monkeypatch) -> None:
    """kill -9 at the first checkpoint, then `distill --resume` finishes it; `train --resume` on
    its config is refused (it would train without the teacher); output_dir is absolute."""
    import yaml
    from typer.testing import CliRunner

    from fintune.cli import app
    from tests.conftest import kill_at_first_checkpoint

    train = tmp_path / "train.csv"
    sentiment_frame(200, seed=1).to_csv(train, index=False)
    teacher = api.train(write_config(tmp_path / "t.yaml", tiny_bert, train, tmp_path / "teacher",
                                     train={"epochs": 2}), show_progress=False).run_dir
    monkeypatch.chdir(tmp_path)
    args = ["distill", "--teacher", str(teacher), "--student", str(tiny_bert), "--output-dir", "student",
            "--no-progress", "train.epochs=4", "train.checkpoint_every=2"]
    kill_at_first_checkpoint(args, tmp_path / "student" / "checkpoint.pt")
    stored = yaml.safe_load((tmp_path / "student" / "config.yaml").read_text())
    assert stored["output_dir"] == str(tmp_path / "student")
    out = CliRunner().invoke(app, ["train", str(tmp_path / "student" / "config.yaml"), "--resume"])
    assert out.exit_code == 2 and "distillation from the teacher" in out.output and "--resume" in out.output
    out = CliRunner().invoke(app, [*args, "--resume"])
    assert out.exit_code == 0, out.output
    meta = json.loads((tmp_path / "student" / "model" / "fintune.json").read_text())
    assert meta["distilled"]["teacher"] == str(teacher)
    history = [json.loads(line) for line in (tmp_path / "student" / "steps.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == history[-1]["total_steps"]
