"""Knowledge distillation: a smaller student learns the teacher's soft targets.

The loss is ``alpha * T^2 * KL(student_T || teacher_T) + (1 - alpha) * CE(student, label)``
(Hinton et al. 2015), with the cross-entropy only on rows that have a label: unlabeled
text the user adds is learned from the teacher's soft targets alone. The student is a
normal run directory: evaluate, predict and serve it like any other.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from fintune import api
from fintune.config import CorpusConfig, DataConfig, DistillConfig, RunConfig, load_config, validate_config
from fintune.config.loading import read_yaml
from fintune.console import console
from fintune.data import Examples, frame_to_texts, read_table
from fintune.data.corpus import Corpus
from fintune.errors import FintuneError
from fintune.models.metadata import DistillMeta
from fintune.predictors import FintuneModel
from fintune.tasks import task_of


class DistillObjective:
    """Soft-target loss against the teacher, plus hard-label loss where labels exist (-1: none)."""

    def __init__(self, labels: np.ndarray, teacher_probs: np.ndarray, cfg: DistillConfig) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        # softmax(log p / T) equals softmax(logits / T): the teacher's probabilities suffice.
        log_p = torch.log(torch.as_tensor(teacher_probs, dtype=torch.float32).clamp_min(1e-12))
        self.soft = torch.softmax(log_p / cfg.temperature, dim=-1)
        self.cfg = cfg

    def __call__(self, logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        t, alpha = self.cfg.temperature, self.cfg.alpha
        logits = logits.float()
        soft = self.soft[index].to(logits.device)
        kd = torch.nn.functional.kl_div(torch.log_softmax(logits / t, dim=-1), soft,
                                        reduction="batchmean") * t * t
        labels = self.labels[index].to(logits.device)
        if alpha >= 1 or not bool((labels >= 0).any()):
            return kd
        ce = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-1)
        return alpha * kd + (1 - alpha) * ce


def student_config(teacher_cfg: RunConfig, student: str, output_dir: str | None,
                   num_layers: int | None) -> RunConfig:
    """A YAML path is used as is; otherwise the teacher's config with another backbone."""
    if student.endswith((".yaml", ".yml")):
        return load_config(student)
    raw = teacher_cfg.model_dump(mode="json")
    raw["model"]["backbone"] = student
    if num_layers is not None:
        raw["model"]["num_layers"] = num_layers
    # Absolute, as `fintune train` records it: config.yaml then names the run wherever it is read from.
    raw["output_dir"] = os.path.abspath(output_dir or f"{teacher_cfg.output_dir}_student")
    return validate_config(raw, source="student")


Unlabeled = str | Path | list[str | Path] | CorpusConfig


def unlabeled_corpus(unlabeled: Unlabeled, data: DataConfig) -> CorpusConfig:
    """The corpus of ``--unlabeled``, in the format of ``fintune pretrain`` (files, folders of
    .txt, CSV/JSONL/Parquet columns), cleaned and masked as the student's data; the run's
    validation and test files are excluded (the leakage guard)."""
    if isinstance(unlabeled, CorpusConfig):
        return unlabeled
    paths = unlabeled if isinstance(unlabeled, list) else [unlabeled]
    held_out = [f for f in (data.validation, data.test) if f is not None]
    return CorpusConfig(sources=[{"path": str(p)} for p in paths], text_column=data.text_column or "text",
                        encoding=data.encoding, clean=data.clean, privacy=data.privacy, min_chars=1,
                        exclude=[{"path": f} for f in held_out], validation_fraction=0)


def _reads_one_text(data: DataConfig) -> bool:
    return data.text_column is not None and not data.feature_columns


def distill(teacher: str | Path, student: str, *, output_dir: str | None = None,
            num_layers: int | None = None, unlabeled: Unlabeled | None = None,
            temperature: float = 2.0, alpha: float = 0.5, overrides: list[str] | tuple[str, ...] = (),
            overwrite: bool = False, resume: bool = False, show_progress: bool = True) -> api.RunResult:
    """Train ``student`` on the teacher run's training data (plus ``unlabeled`` text: files,
    folders or a corpus config for text models; a table with the training columns otherwise).
    ``resume`` continues a killed distillation from its last checkpoint (the same arguments)."""
    teacher_dir = Path(teacher)
    if not (teacher_dir / "config.yaml").exists():
        raise FintuneError(f"{teacher_dir} is not a finished fintune run (no config.yaml)")
    # A run's config.yaml is a record (absolute paths since fintune resolves them), not a file
    # to resolve again: paths of older runs stay relative to the folder they were trained from.
    teacher_cfg = validate_config(read_yaml(teacher_dir / "config.yaml"), source=str(teacher_dir / "config.yaml"))
    if not task_of(teacher_cfg.task).scores_classes:
        raise FintuneError("distillation needs a classification teacher")
    if teacher_cfg.data.pair_column is not None:
        raise FintuneError("distillation takes a teacher that reads one text; this one reads text pairs "
                           "(data.pair_column)")
    cfg = student_config(teacher_cfg, student, output_dir, num_layers)
    if overrides:
        cfg = api.load_run_config(cfg, overrides)
    dcfg = DistillConfig(temperature=temperature, alpha=alpha)
    teacher_model = FintuneModel.load(teacher_dir)

    def objective_for(train: Examples) -> tuple[Examples, DistillObjective]:
        texts, labels = list(train.texts), np.asarray(train.labels, dtype=np.int64)
        if unlabeled is not None:
            if _reads_one_text(cfg.data):
                corpus = Corpus(unlabeled_corpus(unlabeled, cfg.data))
                extra = list(corpus)
                guard = corpus.stats.report()["leakage_guard"]
                console.print(f"unlabeled text: {len(extra):,} texts ({corpus.stats.read:,} read; "
                              f"{guard['excluded_exact'] + guard['excluded_normalized']:,} found in the evaluation "
                              f"files and left out, {corpus.stats.duplicates:,} duplicates)")
            else:
                extra = frame_to_texts(read_table(str(unlabeled), "auto", cfg.data.encoding),
                                       cfg.data, str(unlabeled))
            texts += extra
            labels = np.concatenate([labels, np.full(len(extra), -1, dtype=np.int64)])
        probs = teacher_model.outputs(texts, batch_size=128)
        name = "corpus" if isinstance(unlabeled, CorpusConfig) else unlabeled
        merged = Examples(texts, labels, None, train.source + (f" + {name}" if unlabeled else ""))
        return merged, DistillObjective(labels, probs, dcfg)

    return api.train(cfg, overwrite=overwrite, resume=resume, show_progress=show_progress, objective_for=objective_for,
                     distilled=DistillMeta(teacher=str(teacher_dir), temperature=temperature, alpha=alpha))
