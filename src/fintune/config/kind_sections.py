"""The kind-specific sections of ``model``: LightGBM, the linear model, the ensemble and long
documents (each read by the kinds that declare it in fintune.kinds)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fintune.config.strict import Strict
from fintune.kinds import member_kinds


class GBMConfig(Strict):
    """LightGBM for ``model.kind: gbm``; trees are added until validation loss stops improving."""

    n_estimators: int = Field(2000, ge=1)
    learning_rate: float = Field(0.03, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    early_stopping_rounds: int = Field(100, ge=1)
    bags: int = Field(1, ge=1, le=50, description="boosters averaged, each on its own row and column "
                      "samples (seeds seed, seed + 1, ...); more cost, less variance")


class LinearConfig(Strict):
    """``model.kind: linear``: logistic regression (ridge for regression) on the encoded features,
    its inverse regularization strength chosen by cross-validation on the training split."""

    C: list[float] = Field(default_factory=lambda: [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], min_length=1,
                           description="the grid of inverse regularization strengths tried")
    folds: int = Field(5, ge=2)
    class_weight: Literal["balanced"] | None = None


MemberKind = Literal[member_kinds()]  # type: ignore[valid-type]  # declared in fintune.kinds


class EnsembleConfig(Strict):
    """``model.kind: ensemble``: members trained on the same splits (each with its own early
    stopping), combined by greedy ensemble selection on validation (Caruana et al. 2004)."""

    members: list[MemberKind] = Field(default_factory=lambda: ["gbm", "mlp", "linear"], min_length=1,
                                      description="model kinds, each trained with this config's other "
                                      "settings; add fusion (and text) when there is free text")
    rounds: int = Field(50, ge=1, description="greedy selection steps: a member's weight is the share "
                        "of steps that picked it")
    selection: Literal["loss", "metric"] = Field("loss", description="what greedy selection minimizes on "
                                                  "validation: log loss (squared error for regression), or the "
                                                  "run's tracked metric (train.early_stopping.metric)")

    @field_validator("members")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("model.ensemble.members: each kind once")
        return value


class LongTextConfig(Strict):
    """``model.kind: long_text``: each document is cut into overlapping windows of
    ``model.max_length`` tokens, every window is encoded, and the window vectors are pooled
    into one document vector for the head."""

    stride: int = Field(384, ge=1, description="tokens from the start of one window to the start of the next; "
                        "less than the window's content (max_length minus the special tokens) makes them overlap")
    max_windows: int = Field(16, ge=1, description="windows read per document at most (from its start); a longer "
                             "document is cut there, and training and prediction say how many were")
    pooling: Literal["attention", "mean", "max"] = Field(
        "attention", description="how window vectors become the document's: a learned attention weight per "
        "window, their mean, or their element-wise max")


class BowConfig(Strict):
    """``model.kind: bow``: what the TF-IDF counts."""

    analyzer: Literal["word", "char"] = Field(
        "word", description="word: words and word n-grams (text with spaces between words); char: character "
        "n-grams (Chinese, Japanese, Thai: no spaces between words)")
    ngram_max: int = Field(2, ge=1, le=6, description="the longest n-gram counted: word pairs by default; 3 is "
                           "a common choice for characters")
    max_features: int = Field(50_000, ge=100, description="the most frequent n-grams kept")
