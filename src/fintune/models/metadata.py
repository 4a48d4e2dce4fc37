"""``fintune.json``: what a saved model needs besides its weights, as one typed model.

It is built in one place (:func:`RunMeta.for_run`), written by :meth:`Predictor.save` and
read by :meth:`Predictor.load`. Unknown keys are errors, so a misspelt key never loads as
a silent default. Folders written before this model existed (a flat dict, no
``predictor`` key, the distillation temperature beside the calibration one) are read by
:meth:`RunMeta.read`, which maps the old layout onto this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fintune.config import DataConfig, LongTextConfig, RunConfig, Task
from fintune.errors import FintuneError
from fintune.models.backbones import resolve_backbone

META = "fintune.json"
FORMAT = 2  # 1: the untyped dict of fintune <= 0.1 (no "format" key)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptMeta(_Strict):
    """A causal LM's prompt: the template, and the label words it scores (classification)."""

    template: str
    label_words: list[str] | None = None
    chat_template: str | None = None  # the Jinja template the prompt is wrapped in; None: raw prompt
    system_prompt: str | None = None


class TaggerMeta(_Strict):
    """What a tagger adds to its encoder (see :class:`fintune.tagging.model.TokenTagger`)."""

    scheme: str
    crf: bool = False
    case_features: bool = False
    lstm_hidden: int | None = None
    # model.feature_crf: the feature CRF's share in the mixed tag distribution (picked on validation)
    feature_weight: float | None = None


class DistillMeta(_Strict):
    """Where a distilled student's soft targets came from."""

    teacher: str
    temperature: float | None = None  # None: a run of format 1, which did not keep it apart
    alpha: float


class OnnxMeta(_Strict):
    quantize: str | None = None
    opset: int


class EnsembleMeta(_Strict):
    """An ensemble's members (folders under ``members/``) and their weights, fitted on validation."""

    members: list[str]
    weights: list[float]
    method: str = "greedy ensemble selection with replacement (Caruana et al. 2004) on validation"
    metric: str | None = None  # what the selection maximized or minimized


class TargetScale(_Strict):
    """Regression: the training targets' mean and standard deviation. The network learns the
    standardized target (a fresh head starts near 0 with unit-scale outputs; a target near -10
    or in the millions would take it most of training to reach); predictions are mapped back."""

    mean: float
    std: float

    @classmethod
    def fit(cls, values: Any) -> TargetScale:
        import numpy as np

        values = np.asarray(values, dtype=np.float64)
        std = float(values.std())
        return cls(mean=float(values.mean()), std=std if std > 1e-12 else 1.0)

    def forward(self, values: Any) -> Any:
        return (values - self.mean) / self.std

    def inverse(self, values: Any) -> Any:
        return values * self.std + self.mean


# A fitted temperature lies in [0.05, 20]; a value past this is not a calibration.
TEMPERATURE_MAX = 100.0


class RunMeta(_Strict):
    """The saved model's metadata. ``predictor`` names the registered predictor class."""

    format: int = FORMAT
    predictor: str
    task: Task
    kind: str = "text"
    label_names: list[str] | None = None
    max_length: int = Field(ge=1, le=1_000_000)
    data: DataConfig
    backbone: str | None = None
    base_model: str | None = None
    strategy: str | None = None
    # The decision, fitted on validation data after training.
    # Bounded and finite: a hand-edited or damaged value (-1, 0, NaN, 1e308) would flip or void
    # every prediction while the server answers 200.
    threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    temperature: float | None = Field(None, gt=0, le=TEMPERATURE_MAX, allow_inf_nan=False,
                                      description="softmax temperature of calibration")
    folded_temperature: float | None = Field(None, gt=0, le=TEMPERATURE_MAX, allow_inf_nan=False,
                                             description="the calibration temperature divided into the "
                                             "classifier's weights by export (so plain transformers gives the "
                                             "same probabilities); the model applies no temperature of its own")
    group_thresholds: dict[str, Any] | None = None
    # Multi-label: each label's calibration temperature (1.0 where none was kept), in label_names' order.
    label_temperatures: list[Annotated[float, Field(gt=0, le=TEMPERATURE_MAX, allow_inf_nan=False)]] | None = None
    # Multi-label: each label's threshold on its probability, in label_names' order.
    label_thresholds: list[Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] | None = None
    # Per kind.
    prompt: PromptMeta | None = None
    max_new_tokens: int | None = Field(None, ge=1, le=1_000_000)
    tagger: TaggerMeta | None = None
    fusion_shape: dict[str, Any] | None = None
    target_scale: TargetScale | None = None  # regression by the network: predictions are mapped back
    ensemble: EnsembleMeta | None = None
    long_text: LongTextConfig | None = None  # how a long document is cut into windows and pooled
    # Where it came from.
    distilled: DistillMeta | None = None
    merged_from: str | None = None
    exported_from: str | None = None
    onnx: OnnxMeta | None = None

    @classmethod
    def for_run(cls, cfg: RunConfig, predictor: str, label_names: list[str] | None, **extra: Any) -> RunMeta:
        """The metadata of a model trained from ``cfg``; ``extra`` holds the per-kind parts."""
        return cls(predictor=predictor, task=cfg.task, kind=cfg.model.kind, label_names=label_names,
                   max_length=cfg.model.max_length, data=cfg.data, backbone=cfg.model.backbone,
                   base_model=resolve_backbone(cfg.model.backbone), strategy=cfg.strategy.name, **extra)

    @classmethod
    def read(cls, folder: Path) -> RunMeta:
        """``folder/fintune.json``, in the current or the old layout."""
        try:
            raw = json.loads((folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FintuneError(f"{folder / META} cannot be read: {exc}") from None
        return cls.parse(raw, str(folder / META))

    @classmethod
    def parse(cls, raw: dict[str, Any] | RunMeta, source: str = META) -> RunMeta:
        """A dict as written (any layout) to the typed model."""
        if isinstance(raw, RunMeta):
            return raw
        if not isinstance(raw, dict):
            raise FintuneError(f"{source} is not valid fintune metadata (a JSON object is expected); it was edited "
                               "or damaged")
        raw = raw if raw.get("format") == FORMAT else upgrade(raw)
        if isinstance(raw.get("data"), dict) and "privacy" not in raw["data"]:
            # Written before masking existed: the model trained on unmasked text, so it keeps
            # predicting on unmasked text.
            raw = {**raw, "data": {**raw["data"], "privacy": {"mask": False}}}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise FintuneError(f"{source} is not valid fintune metadata ({problems}); it was edited or damaged, "
                               "or written by a newer fintune") from None

    def write(self, folder: Path) -> None:
        (folder / META).write_text(self.model_dump_json(indent=2), encoding="utf-8")

    def updated(self, **changes: Any) -> RunMeta:
        """A copy with ``changes``, validated again."""
        return RunMeta.model_validate({**self.model_dump(), **changes})


def predictor_name(task: str, kind: str, head: str = "label_words") -> str:
    """The predictor of a model of ``kind`` for ``task``: one class per kind, and the two
    tasks that change what a model answers (generated text, tags) have classes of their own;
    a causal LM with a classification head (``model.head``) is read like an encoder."""
    if head == "classifier":
        return "causal_head"
    return {"generation": "generation", "token_classification": "tagger"}.get(task, kind)


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """The flat dict of format 1 in the current layout."""
    old = dict(raw)
    out: dict[str, Any] = {"format": FORMAT}
    kind = old.pop("kind", "text")
    out["predictor"] = predictor_name(old["task"], kind)
    out["kind"] = kind
    out["data"] = old.pop("data")
    tagger = {k: old.pop(k) for k in ("scheme", "crf", "case_features", "lstm_hidden") if k in old}
    if out["predictor"] == "tagger":
        out["tagger"] = tagger
    if "distilled_from" in old:
        # Format 1 kept the distillation temperature under "temperature", the key calibration
        # writes too: what is stored there is what that student applied, so it stays.
        out["distilled"] = {"teacher": old.pop("distilled_from"), "alpha": old.pop("alpha")}
    return {**out, **old}
