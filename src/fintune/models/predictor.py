"""The predictor: a trained model with what it needs to predict, one subclass per model kind.

:class:`Predictor` owns what every kind shares: the metadata (``fintune.json``), the data
config that maps table rows to inputs, labels and decisions (threshold, temperature,
per-group thresholds), prediction columns, and the common files of save/load. Each kind
(text, fusion/mlp, gbm, causal classifier, generation, tagger) is a subclass registered
under its name, as peft maps a task type to its model class; :meth:`Predictor.load` reads
``fintune.json`` once and hands the folder to the registered class.

Each class also says what it supports (:attr:`servable`, :attr:`onnx_export`,
:attr:`explanation`, :attr:`has_scores`, with the reason when it does not), so the
server, export, explanations, reports and the board ask the class instead of comparing
kind names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from fintune.config import DataConfig, ModelConfig
from fintune.data import Examples
from fintune.data.columns import feature_frame, frame_to_texts, instructions_of, pairs_of
from fintune.data.features import FEATURES_FILE, FeatureEncoder
from fintune.errors import DataError, FintuneError
from fintune.models.inference import (
    FeatureRows, Inputs, Processor, PromptTokens, TokenIds, model_scores, resolve_precision,
)
from fintune.models.metadata import RunMeta
from fintune.models.reading import aligned, model_folder, to_examples
from fintune.models.onnx import ONNX_FILE, OnnxModel
from fintune.scoring.calibration import calibrated
from fintune.scoring.groups import FairThresholds, GroupThresholds, group_decision
from fintune.models.label_sets import label_columns, predicted_sets
from fintune.models.summary import Described
from fintune.tasks import task_of

OnBatch = Callable[[int], None] | None

PREDICTORS: dict[str, type[Predictor]] = {}


def register_predictor(*names: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator: load and build models whose metadata names one of ``names``."""
    def wrap(cls: type[Predictor]) -> type[Predictor]:
        cls.name = names[0]
        for name in names:
            PREDICTORS[name] = cls
        return cls
    return wrap


class Predictor(Described):
    """Owns predict: texts (or rows of a table) in, labels and probabilities out.

    ``Predictor(model, tokenizer, meta)`` builds the class that ``meta`` names; a subclass
    may be built directly. ``Predictor.load(path)`` reads a saved folder.
    """

    # What the kind supports; a reason stands where it does not, so callers can say why.
    servable: ClassVar[str | None] = None  # None: `fintune serve` answers with it; else why not
    onnx_export: ClassVar[str | None] = None  # None: `fintune export --format onnx` traces it; else why not
    explanation: ClassVar[str | None] = None  # "integrated_gradients" or "occlusion"; None: none
    has_scores: ClassVar[bool] = True  # class probabilities or values (calibration, fairness, drift)
    # None: it answers conversations (`fintune chat`, /v1/chat/completions); else why not.
    chats: ClassVar[str | None] = ("only instruction-tuned causal LMs (task generation) answer in text; this model "
                                   "gives labels or values")
    reads_text: ClassVar[bool] = True  # a tokenizer is saved and loaded with the model
    reads_features: ClassVar[bool] = False  # encoded feature columns (a fitted FeatureEncoder)
    binned_features: ClassVar[bool] = True  # numeric features also as quantile bins (model.numeric_bins)
    # The model card's account of the kind ({backbone} and {strategy} from fintune.json) and the
    # library that runs it (the Hub's library_name; None: no single one).
    card_origin: ClassVar[str] = "fine-tuned from backbone `{backbone}` with strategy `{strategy}`"
    card_library: ClassVar[str | None] = "transformers"
    name: ClassVar[str]  # the registered name, written to fintune.json

    def __new__(cls, *args: Any, **kwargs: Any) -> Predictor:
        if cls is Predictor:  # dispatch on the metadata's predictor name
            meta = RunMeta.parse(args[2] if len(args) > 2 else kwargs["meta"])
            cls = predictor_class(meta.predictor)
        return super().__new__(cls)

    def __init__(self, model: Any, tokenizer: Any, meta: RunMeta | dict[str, Any],
                 dtype: torch.dtype | None = None, features: FeatureEncoder | None = None) -> None:
        self.model, self.tokenizer, self.dtype, self.features = model, tokenizer, dtype, features
        self.meta = RunMeta.parse(meta)
        self.task: str = self.meta.task
        self.kind: str = self.meta.kind
        self.label_names: list[str] | None = self.meta.label_names
        self.max_length: int = self.meta.max_length
        self.data_config: DataConfig = self.meta.data
        self.inputs = type(self).new_inputs(tokenizer, self.max_length, features, self._prompt(), self.meta.long_text)
        # Set by fintune.fit and by load() from a run folder: where it was trained, what the run measured.
        self.run_dir: Path | None = None
        self.metrics: dict[str, Any] | None = None

    # ------------------------------------------------------------ building for training

    @classmethod
    def build(cls, cfg: ModelConfig, task: str, label_names: list[str] | None, n_features: int, prompt: Any,
              load_kwargs: dict[str, Any]) -> torch.nn.Module:
        """A new model of this kind from the backbone, to train (``load_kwargs``: e.g. QLoRA's 4 bits)."""
        raise FintuneError(f"{cls.name} models are not trained by the training loop")

    @classmethod
    def new_prompt(cls, cfg: ModelConfig, tokenizer: Any, label_names: list[str] | None,
                   has_instructions: bool) -> Any:
        """What wraps each text before tokenizing, for a new model (causal LMs); None here."""
        return None

    @classmethod
    def prompt_meta(cls, cfg: ModelConfig, prompt: Any) -> dict[str, Any]:
        """What fintune.json records of a new model's prompt (see :meth:`new_prompt`)."""
        return {}

    @classmethod
    def processors(cls, tokenizer: Any, max_length: int, features: FeatureEncoder | None, prompt: Any,
                   windows: Any) -> tuple[Processor, ...]:
        """What this kind reads, one processor per modality: a prompt's tokens (causal LMs) or the
        text's, and the feature rows where a feature encoder was fitted. A kind that reads
        something else (windows, words, an image) overrides this."""
        text = (PromptTokens(prompt, max_length),) if prompt is not None else \
            (TokenIds(tokenizer, max_length),) if tokenizer is not None else ()
        return text + ((FeatureRows(features),) if features is not None else ())

    @classmethod
    def new_inputs(cls, tokenizer: Any, max_length: int, features: FeatureEncoder | None = None, prompt: Any = None,
                   windows: Any = None) -> Inputs:
        """The :class:`Inputs` of this kind over its :meth:`processors`."""
        return Inputs(tokenizer, max_length, features, prompt,
                      cls.processors(tokenizer, max_length, features, prompt, windows))

    @classmethod
    def new_windows(cls, cfg: ModelConfig) -> Any:
        """How a new model cuts long documents into windows (long_text); None: it truncates."""
        return None

    @classmethod
    def fit(cls, table: Any, /, **kwargs: Any) -> Predictor:
        """:func:`fintune.fit`: train from DataFrames, Datasets or paths and get the model back."""
        if not _FIT:
            raise FintuneError("FintuneModel.fit is fintune.fit: import fintune (or fintune.api) first")
        return _FIT[0](table, **kwargs)

    # ------------------------------------------------------------ loading and saving

    @classmethod
    def load(cls, path: str | Path, precision: str = "fp32", threads: int | None = None) -> Predictor:
        """Load from a run directory or its ``model`` folder (Hugging Face format), or from a
        folder written by ``fintune export --format onnx`` (run by onnxruntime).

        fp32 by default so predictions match what evaluation reported; 'auto' uses bf16
        where the hardware runs it natively. ``threads`` caps onnxruntime's threads.
        """
        folder = model_folder(path)
        meta = RunMeta.read(folder)
        kind = predictor_class(meta.predictor)
        if cls is not Predictor and not issubclass(kind, cls):
            raise FintuneError(f"{path} holds a {meta.predictor} model, not a {cls.__name__}")
        features = FeatureEncoder.load(folder) if (folder / FEATURES_FILE).exists() else None
        return kind._from_folder(folder, meta, features, precision, threads).found_in(folder)

    @classmethod
    def _from_folder(cls, folder: Path, meta: RunMeta, features: FeatureEncoder | None, precision: str,
                     threads: int | None) -> Predictor:
        """Build the predictor from its folder: tokenizer, then ONNX graph or torch weights."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder) if cls.reads_text else None
        if (folder / ONNX_FILE).exists():
            return cls(OnnxModel(folder / ONNX_FILE, threads), tokenizer, meta, None, features)
        model = cls._load_model(folder, meta, tokenizer)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device).eval(), tokenizer, meta, resolve_precision(precision, device), features)

    @classmethod
    def _load_model(cls, folder: Path, meta: RunMeta, tokenizer: Any) -> torch.nn.Module:
        """The torch module saved in ``folder`` (each kind knows its files)."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> None:
        """Write model, tokenizer and metadata; the folder loads with transformers alone too."""
        if isinstance(self.model, OnnxModel):
            raise FintuneError("this model runs an ONNX graph; `fintune export --format onnx` writes such folders, "
                               "and the run folder it came from holds the model to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_model(folder)
        if self.is_adapter:
            # The base config carries id2label and the layer count the adapter was trained on.
            self._adapter.get_base_model().config.save_pretrained(folder)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        if self.features is not None:
            self.features.save(folder)
        self.meta.write(folder)

    def _save_model(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)

    # ------------------------------------------------------------ adapters

    @property
    def _adapter(self) -> Any:
        """The PEFT model, if any: the model itself, or the transformer inside a wrapper
        (the LM of a causal classifier, the encoder of a tagger)."""
        inner = getattr(self.model, "peft_attribute", None)
        for candidate in (self.model, getattr(self.model, inner, None) if inner else None):
            if hasattr(candidate, "peft_config"):
                return candidate
        return None

    @property
    def is_adapter(self) -> bool:
        """True when the model is a PEFT adapter on a base model."""
        return self._adapter is not None

    def merged(self) -> Predictor:
        """A plain model with LoRA weights merged in; gives the same outputs as base + adapter."""
        if not self.is_adapter:
            return self
        adapter = self._adapter
        if not hasattr(adapter, "merge_and_unload"):
            raise FintuneError(f"a {self.meta.strategy} adapter cannot be merged into the "
                               "weights (only LoRA can); serve it as an adapter")
        meta = self.meta.updated(merged_from=self.meta.strategy)
        return type(self)(self._with_merged(adapter.merge_and_unload()), self.tokenizer, meta, self.dtype,
                          self.features)

    def folded(self) -> Predictor | None:
        """The model with its calibration temperature divided into its last layer, so a plain
        transformers ``pipeline`` gives fintune's probabilities; None where the kind cannot
        (its probabilities do not come from one Hugging Face classifier layer)."""
        return None

    def _with_merged(self, merged: torch.nn.Module) -> torch.nn.Module:
        """The model with its adapter replaced by ``merged`` (wrappers rebuild around it)."""
        return merged

    # ------------------------------------------------------------ decisions

    @property
    def threshold(self) -> float | None:
        """The binary decision threshold on P(positive), if one was chosen."""
        return self.meta.threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self.meta.threshold = value

    def uses_backbone(self) -> bool:
        """Whether the model grew from ``model.backbone`` (a tree or linear model did not)."""
        return self.reads_text

    def card_summary(self) -> str:
        """What this model is, in the model card's words: the kind, its backbone and strategy."""
        return self.card_origin.format(backbone=self.meta.backbone, strategy=self.meta.strategy)

    @property
    def temperature(self) -> float | None:
        """The calibration temperature, fitted on validation."""
        return self.meta.temperature

    @temperature.setter
    def temperature(self, value: float | None) -> None:
        self.meta.temperature = value

    @property
    def group_thresholds(self) -> GroupThresholds | FairThresholds | None:
        """The per-group decision fitted by fairness mitigation (``fintune fairness --mitigate``)."""
        groups = self.meta.group_thresholds
        return group_decision(groups) if groups else None

    @property
    def explanation_method(self) -> str | None:
        """How :func:`fintune.evaluation.explain.explain` explains this model (None: its task or kind has none)."""
        return self.explanation if task_of(self.task).explained else None

    # ------------------------------------------------------------ inputs

    def _prompt(self) -> Any:
        """What wraps each text before tokenizing (causal LMs' prompts); None for the others."""
        return None

    def examples_of(self, frame: pd.DataFrame, source: str, first_row: int = 1) -> Examples:
        """Rows of a table as model input, with the column mapping and cleaning of training;
        ``first_row``: the file row of the frame's first row (a chunk of a streamed file), which errors name."""
        cfg = self.data_config
        return Examples(frame_to_texts(frame, cfg, source, first_row), None, None, source,
                        feature_frame(frame, cfg, source),
                        parts={"instructions": instructions_of(frame, cfg, source, first_row),
                               "pairs": pairs_of(frame, cfg, source, first_row)})

    # ------------------------------------------------------------ scores

    def outputs(self, examples: Examples | list[str], batch_size: int = 64, on_batch: OnBatch = None) -> np.ndarray:
        """Class probabilities (n, k), or predictions (n,) for regression.

        Texts alone do for a text model; fusion and feature models need :class:`Examples`
        with features (see :meth:`examples_of`).
        """
        return self.scores(examples, batch_size, on_batch)[0]

    def scores(self, examples: Examples | list[str], batch_size: int = 64, on_batch: OnBatch = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`outputs` and, when asked, one vector per input: the mean-pooled last hidden
        layer (text), the vector the head reads (fusion, mlp), the encoded row (gbm)."""
        examples = self.as_examples(examples)
        column = self.data_config.pair_column
        if column is not None and examples.pairs is None:
            # Scoring the text alone would answer another question without saying so.
            raise DataError(f"this model reads each text with its pair column '{column}' (data.pair_column); give "
                            f"rows with that column (FintuneModel.examples_of) or Examples(..., parts={{'pairs': [...]}})",
                            file=examples.source, column=column)
        out, vectors = self._raw_scores(self.inputs(examples), batch_size, on_batch, with_vectors)
        out = calibrated(out, self.temperature if task_of(self.task).scores_classes else None,
                         self.meta.label_temperatures)
        if task_of(self.task).answer == "value" and self.meta.target_scale is not None:
            out = self.meta.target_scale.inverse(out)
        return out, vectors

    def _raw_scores(self, encoded: dict[str, Any], batch_size: int, on_batch: OnBatch,
                    with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(self.model, OnnxModel):
            return self.model.scores(encoded, batch_size, self.task, self.inputs.pad_id, on_batch, with_vectors)
        return model_scores(self.model, encoded, batch_size, self.task, self.inputs.pad_id, self.dtype,
                            on_batch, with_vectors)

    def predict(self, data: Any, batch_size: int = 64) -> Any:
        """Label names for classification, numbers for regression (answers for generation,
        entities for token classification: see those classes).

        ``data``: a DataFrame with the training columns (a Series comes back, on its index),
        a Hugging Face ``Dataset``, a list of texts or :class:`Examples` (a list comes back).
        """
        examples = self.as_examples(data)
        out = self.outputs(examples, batch_size)
        if task_of(self.task).answer == "value":
            return aligned(data, [float(v) for v in out], "prediction")
        if task_of(self.task).answer == "labels":  # a list of label names per input
            return aligned(data, predicted_sets(out, self.label_names or [], self.meta.label_thresholds),
                           "predicted_labels")
        groups = None
        if self.group_thresholds is not None and isinstance(data, pd.DataFrame):
            groups = data[self.group_thresholds.column] if self.group_thresholds.column in data else None
        return aligned(data, self.labels_of(out, groups), "predicted_label")

    def predict_proba(self, data: Any, batch_size: int = 64) -> Any:
        """Class probabilities (after the fitted temperature), one column per label: a
        DataFrame on the input's index for a DataFrame, else a list of rows."""
        if not (task_of(self.task).scores_classes or task_of(self.task).answer == "labels") or not self.has_scores:
            raise FintuneError(f"predict_proba is for classification models; this is a {self.task} model: "
                               "use predict")
        out = self.outputs(self.as_examples(data), batch_size)
        if isinstance(data, (pd.DataFrame, pd.Series)):
            return pd.DataFrame(out, index=data.index, columns=self.label_names)
        return out.tolist()

    def as_examples(self, data: Any) -> Examples:
        """Model input from :class:`Examples`, a DataFrame (read with the training columns and
        cleaning), a Hugging Face ``Dataset``, or a list (or Series) of texts."""
        return to_examples(data, self.examples_of)

    def labels_ids(self, probs: np.ndarray, groups: pd.Series | None = None) -> np.ndarray:
        """Class ids from probabilities: per-group thresholds when fitted and the group column
        is given, else the saved threshold, else argmax."""
        group_thresholds = self.group_thresholds
        if group_thresholds is not None and groups is not None and probs.shape[1] == 2:
            return group_thresholds.decide(probs[:, 1], groups)
        if self.threshold is not None and probs.shape[1] == 2:
            return (probs[:, 1] >= self.threshold).astype(int)
        return probs.argmax(axis=1)

    def labels_of(self, probs: np.ndarray, groups: pd.Series | None = None) -> list[str]:
        """Label names from class probabilities (see :meth:`labels_ids`)."""
        assert self.label_names is not None
        return [self.label_names[i] for i in self.labels_ids(probs, groups)]

    def prediction_columns(self, out: Any, frame: pd.DataFrame | None = None) -> dict[str, Any]:
        """Columns to append to input rows: predicted label and one probability per class
        (the value, for regression).

        With per-group thresholds, ``frame`` must hold the group column.
        """
        if task_of(self.task).answer == "value":
            return {"prediction": out}
        assert self.label_names is not None
        if task_of(self.task).answer == "labels":
            return label_columns(out, self.label_names, self.meta.label_thresholds, self.data_config.label_separator)
        groups = None
        group_thresholds = self.group_thresholds
        if group_thresholds is not None and frame is not None:
            column = group_thresholds.column
            if column not in frame.columns:
                raise DataError(f"this model decides with per-group thresholds on '{column}', and the input "
                                f"has no such column; add it", column=column)
            groups = frame[column]
        cols: dict[str, Any] = {"predicted_label": self.labels_of(out, groups)}
        for i, name in enumerate(self.label_names):
            cols[f"prob_{name}"] = out[:, i]
        return cols

    # ------------------------------------------------------------ tables in, columns out

    def rows_for_prediction(self, frame: pd.DataFrame, source: str, first_row: int = 1) -> Any:
        """Read and check every row of ``frame`` before its predictions are written; what
        :meth:`predict_columns` takes."""
        examples = self.examples_of(frame, source, first_row)
        if self.features is not None:
            self.inputs(examples)
        return examples

    def predict_columns(self, rows: Any, start: int, stop: int, chunk: pd.DataFrame, batch_size: int,
                        on_batch: OnBatch = None) -> dict[str, Any]:
        """The columns appended to rows ``start:stop`` (``chunk``) of the table."""
        out = self.outputs(rows.subset(start, stop), batch_size, on_batch=on_batch)
        return self.prediction_columns(out, chunk)

    def truncated(self, data: Any) -> np.ndarray | None:
        """Which rows the model reads only in part (longer than ``max_length`` tokens, or past
        a long document's last window); None where this kind does not measure it."""
        return self.inputs.cut(self.as_examples(data))

    def truncated_rows(self, rows: Any, start: int, stop: int) -> np.ndarray | None:
        """:meth:`truncated` for rows ``start:stop`` of what :meth:`rows_for_prediction` read."""
        return self.inputs.cut(rows.subset(start, stop))


# fintune.api sits above this layer; it registers its fit here so FintuneModel.fit can call it.
_FIT: list[Callable[..., Predictor]] = []


def register_fit(fit: Callable[..., Predictor]) -> None:
    """Called once by :mod:`fintune.api`: the function behind :meth:`Predictor.fit`."""
    _FIT[:] = [fit]


def predictor_class(name: str) -> type[Predictor]:
    """The registered predictor class for ``name``."""
    if name not in PREDICTORS:
        raise FintuneError(f"no predictor is registered for '{name}' models (registered: "
                           f"{', '.join(sorted(PREDICTORS))}); load models through fintune.FintuneModel, "
                           "which registers every kind")
    return PREDICTORS[name]
