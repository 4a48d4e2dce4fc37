"""A trained model with what it needs to predict: tokenizer, labels and the data mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from fintune.config import DataConfig
from fintune.data import Examples, clean_text, frame_to_texts
from fintune.data.features import FEATURES_FILE, FeatureEncoder
from fintune.data.prepare import feature_frame, instructions_of, pairs_of
from fintune.errors import DataError, FintuneError
from fintune.evaluation.calibration import apply_temperature
from fintune.evaluation.fairness import GroupThresholds
from fintune.models.backbones import resolve_backbone
from fintune.models.causal import CausalClassifier, PromptFormat
from fintune.models.fusion import FusionModel, load_fusion
from fintune.models.generation import GenerationFormat, generate
from fintune.models.gbm import GBMModel
from fintune.models.inference import Inputs, model_scores, resolve_precision
from fintune.models.onnx import ONNX_FILE, OnnxModel
from fintune.tagging.model import TagInputs, TokenTagger, load_tagger, predict_tags
from fintune.tagging.schemes import Entity, spans, words

META = "fintune.json"
ADAPTER = "adapter_config.json"


class FintuneModel:
    """Owns predict: texts (or rows of a table) in, labels and probabilities out."""

    def __init__(self, model: torch.nn.Module | GBMModel | OnnxModel, tokenizer: Any, meta: dict[str, Any],
                 dtype: torch.dtype | None = None, features: FeatureEncoder | None = None) -> None:
        self.model, self.tokenizer, self.meta, self.dtype = model, tokenizer, meta, dtype
        self.features = features
        self.task: str = meta["task"]
        self.kind: str = meta.get("kind", "text")
        self.label_names: list[str] | None = meta.get("label_names")
        self.max_length: int = meta["max_length"]
        self.threshold: float | None = meta.get("threshold")  # binary decision threshold, if chosen
        self.temperature: float | None = meta.get("temperature")  # calibration, fitted on validation
        groups = meta.get("group_thresholds")
        self.group_thresholds = GroupThresholds(**groups) if groups else None
        data = dict(meta["data"])
        # Runs from before masking existed trained on unmasked text: keep predicting the same way.
        data.setdefault("privacy", {"mask": False})
        self.data_config = DataConfig.model_validate(data)
        self.prompt = _prompt(tokenizer, meta)
        self.inputs = Inputs(tokenizer, self.max_length, features, self.prompt)
        self.tag_inputs = (TagInputs(tokenizer, self.max_length, {t: i for i, t in enumerate(self.label_names or [])},
                                     bool(meta.get("case_features")))
                           if self.task == "token_classification" else None)

    @classmethod
    def load(cls, path: str | Path, precision: str = "fp32", threads: int | None = None) -> FintuneModel:
        """Load from a run directory or its ``model`` folder (Hugging Face format), or from a
        folder written by ``fintune export --format onnx`` (run by onnxruntime).

        fp32 by default so predictions match what evaluation reported; 'auto' uses bf16
        where the hardware runs it natively. ``threads`` caps onnxruntime's threads.
        """
        path = Path(path)
        folder = path / "model" if (path / "model" / META).exists() else path
        if not (folder / META).exists():
            raise FintuneError(f"{path} is not a fintune run or model folder (no {META}); "
                               "give the output_dir of a finished `fintune train`")
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        kind = meta.get("kind", "text")
        features = FeatureEncoder.load(folder) if (folder / FEATURES_FILE).exists() else None
        num_labels = len(meta.get("label_names") or [None])
        if kind == "gbm":
            return cls(GBMModel.load(folder, meta["task"], num_labels), None, meta, None, features)
        tokenizer = AutoTokenizer.from_pretrained(folder) if kind in ("text", "fusion", "causal") else None
        if (folder / ONNX_FILE).exists():
            return cls(OnnxModel(folder / ONNX_FILE, threads), tokenizer, meta, None, features)
        if meta["task"] == "token_classification":
            model: torch.nn.Module = load_tagger(folder, meta, _adapter_base(folder, meta))
        elif kind == "causal":
            model = _load_causal(folder, meta, tokenizer)
        elif kind in ("fusion", "mlp"):
            model = load_fusion(folder, meta["fusion_shape"], with_encoder=kind == "fusion")
        elif (folder / ADAPTER).exists():
            # A PEFT adapter: the base weights come from the backbone, the head from the adapter.
            from peft import PeftModel

            base_path = _adapter_base(folder, meta)
            base = AutoModelForSequenceClassification.from_pretrained(
                base_path, config=AutoConfig.from_pretrained(folder), use_safetensors=True)
            model = PeftModel.from_pretrained(base, folder)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device).eval(), tokenizer, meta, resolve_precision(precision, device), features)

    @property
    def _adapter(self) -> Any:
        """The PEFT model, if any: the model itself, or the transformer inside a wrapper
        (the LM of a causal classifier, the encoder of a tagger)."""
        inner = getattr(self.model, "peft_attribute", None)
        for candidate in (self.model, getattr(self.model, inner, None) if inner else None):
            if hasattr(candidate, "peft_config"):
                return candidate
        return None

    def save(self, folder: str | Path) -> None:
        """Write model, tokenizer and metadata; the folder loads with transformers alone too."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        if isinstance(self.model, (FusionModel, GBMModel)):
            self.model.save(folder)
            if isinstance(self.model, FusionModel):
                meta["fusion_shape"] = self.model.shape
        elif isinstance(self.model, CausalClassifier):  # the LM in HF format: it loads anywhere
            self.model.lm.save_pretrained(folder, safe_serialization=True)
        elif isinstance(self.model, TokenTagger):
            self.model.save(folder)
        else:
            self.model.save_pretrained(folder, safe_serialization=True)
        if self.is_adapter:
            # The base config carries id2label and the layer count the adapter was trained on.
            self._adapter.get_base_model().config.save_pretrained(folder)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        if self.features is not None:
            self.features.save(folder)
        (folder / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @property
    def is_adapter(self) -> bool:
        """True when the model is a PEFT adapter on a base model."""
        return self._adapter is not None

    def merged(self) -> FintuneModel:
        """A plain model with LoRA weights merged in; gives the same outputs as base + adapter."""
        if not self.is_adapter:
            return self
        adapter = self._adapter
        if not hasattr(adapter, "merge_and_unload"):
            raise FintuneError(f"a {self.meta.get('strategy')} adapter cannot be merged into the "
                               "weights (only LoRA can); serve it as an adapter")
        meta = {**self.meta, "merged_from": self.meta.get("strategy")}
        if isinstance(self.model, CausalClassifier):
            model: Any = CausalClassifier(adapter.merge_and_unload(), self.model.label_ids, self.model.pad_id)
        elif isinstance(self.model, TokenTagger):
            model = TokenTagger(adapter.merge_and_unload(), self.model.crf, self.model.case, self.model.lstm)
        else:
            model = adapter.merge_and_unload()
        return FintuneModel(model, self.tokenizer, meta, self.dtype, self.features)

    def generate(self, examples: Examples | list[str], batch_size: int = 16, on_batch: Any = None) -> list[str]:
        """Generation runs: the answer to each record's prompt (greedy, up to ``max_new_tokens``).

        Plain texts are inputs without an instruction; records from a table carry their own
        (see :meth:`examples_of`).
        """
        if self.task != "generation":
            raise FintuneError(f"this is a {self.task} model: use predict or outputs, not generate")
        if not isinstance(examples, Examples):
            examples = Examples(list(examples), None, None, "input")
        return generate(self.model, self.tokenizer, self.inputs(examples), batch_size,
                        self.meta.get("max_new_tokens", 32), self.dtype, on_batch)

    def outputs(self, examples: Examples | list[str], batch_size: int = 64, on_batch: Any = None) -> np.ndarray:
        """Class probabilities (n, k), or predictions (n,) for regression.

        Texts alone do for a text model; fusion and feature models need :class:`Examples`
        with features (see :meth:`examples_of`).
        """
        return self.scores(examples, batch_size, on_batch)[0]

    def scores(self, examples: Examples | list[str], batch_size: int = 64, on_batch: Any = None,
               with_vectors: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`outputs` and, when asked, one vector per input: the mean-pooled last hidden
        layer (text), the vector the head reads (fusion, mlp), the encoded row (gbm)."""
        if self.task == "generation":
            raise FintuneError("a generation run answers in text and has no class probabilities or values to "
                               "score; use `fintune predict` (FintuneModel.generate) and `fintune evaluate`")
        if self.task == "token_classification":
            raise FintuneError("a token_classification run tags words: use FintuneModel.tags or .entities "
                               "(`fintune predict` writes the entities of each row)")
        if not isinstance(examples, Examples):
            examples = Examples(list(examples), None, None, "input")
        column = self.data_config.pair_column
        if column is not None and examples.pairs is None:
            # Scoring the text alone would answer another question without saying so.
            raise DataError(f"this model reads each text with its pair column '{column}' (data.pair_column); give "
                            f"rows with that column (FintuneModel.examples_of) or Examples(..., pairs=...)",
                            file=examples.source, column=column)
        encoded = self.inputs(examples)
        if isinstance(self.model, GBMModel):
            out = self.model.outputs(encoded["features"])
            vectors = np.asarray(encoded["features"], dtype=np.float32) if with_vectors else None
            if on_batch:
                on_batch(len(out))
        elif isinstance(self.model, OnnxModel):
            out, vectors = self.model.scores(encoded, batch_size, self.task, self.inputs.pad_id, on_batch,
                                             with_vectors)
        else:
            out, vectors = model_scores(self.model, encoded, batch_size, self.task, self.inputs.pad_id,
                                        self.dtype, on_batch, with_vectors)
        if self.temperature is not None and self.task == "classification":
            out = apply_temperature(out, self.temperature)
        return out, vectors

    def tags(self, sentences: Examples | list[list[str]], batch_size: int = 32, on_batch: Any = None) -> list[list[str]]:
        """token_classification: the tag of every word of each sentence (lists of words)."""
        if self.tag_inputs is None:
            raise FintuneError(f"this is a {self.task} model, not a tagger (task token_classification)")
        return [[self.tag_names[i] for i in row] for row in self._tag_ids(sentences, batch_size, on_batch)[0]]

    @property
    def tag_names(self) -> list[str]:
        assert self.label_names is not None
        return self.label_names

    def _tag_ids(self, sentences: Examples | list[list[str]], batch_size: int,
                 on_batch: Any = None) -> tuple[list[list[int]], list[list[float]]]:
        assert self.tag_inputs is not None and isinstance(self.model, TokenTagger)
        if not isinstance(sentences, Examples):
            sentences = [list(s) for s in sentences]
            sentences = Examples([" ".join(s) for s in sentences], None, None, "input", tokens=sentences)
        assert sentences.tokens is not None
        # Tags are not read: the gold tags of an evaluation split must not reach the model's input.
        return predict_tags(self.model, self.tag_inputs(_unlabelled(sentences)), [len(t) for t in sentences.tokens],
                            batch_size, self.tag_inputs.pad_id, self.dtype, on_batch)

    def entities(self, texts: list[str], batch_size: int = 32, on_batch: Any = None) -> list[list[Entity]]:
        """token_classification: the entities in each raw text, with character offsets into it."""
        located = [words(text) for text in texts]
        return self._entities(texts, located, batch_size, on_batch)

    def entities_of_tokens(self, sentences: list[list[str]], batch_size: int = 32,
                           on_batch: Any = None) -> list[list[Entity]]:
        """Entities in sentences given as words; offsets point into the words joined by spaces."""
        located = []
        for words_ in sentences:
            starts = np.cumsum([0] + [len(w) + 1 for w in words_[:-1]])
            located.append([(w, int(s), int(s) + len(w)) for w, s in zip(words_, starts)])
        return self._entities([" ".join(s) for s in sentences], located, batch_size, on_batch)

    def _entities(self, texts: list[str], located: list[list[tuple[str, int, int]]], batch_size: int,
                  on_batch: Any) -> list[list[Entity]]:
        # Words are cleaned as training words were; offsets stay those of the raw text.
        clean = self.data_config.clean
        kept = [[(clean_text(w, clean), a, b) for w, a, b in ws] for ws in located]
        kept = [[(w, a, b) for w, a, b in ws if w.strip()] for ws in kept]
        todo = [i for i, ws in enumerate(kept) if ws]  # a text without words has no entities
        ids, probs = self._tag_ids([[w for w, _, _ in kept[i]] for i in todo], batch_size, on_batch)
        out: list[list[Entity]] = [[] for _ in texts]
        for i, row, p in zip(todo, ids, probs):
            ws, tags = kept[i], [self.tag_names[t] for t in row]
            out[i] = [Entity(kind, texts[i][ws[a][1]:ws[b - 1][2]], ws[a][1], ws[b - 1][2], float(np.mean(p[a:b])))
                      for kind, a, b in spans(tags)]
        return out

    def predict(self, examples: Examples | list[str], batch_size: int = 64) -> list[str] | np.ndarray:
        """Label names for classification, numbers for regression, answers for generation,
        entities for token classification."""
        if self.task == "generation":
            return self.generate(examples, batch_size)
        if self.task == "token_classification":
            texts = examples.texts if isinstance(examples, Examples) else list(examples)
            return self.entities(texts, batch_size)  # type: ignore[return-value]
        out = self.outputs(examples, batch_size)
        return out if self.task == "regression" else self.labels_of(out)

    def labels_ids(self, probs: np.ndarray, groups: pd.Series | None = None) -> np.ndarray:
        """Class ids from probabilities: per-group thresholds when fitted and the group column
        is given, else the saved threshold, else argmax."""
        if self.group_thresholds is not None and groups is not None and probs.shape[1] == 2:
            return self.group_thresholds.decide(probs[:, 1], groups)
        if self.threshold is not None and probs.shape[1] == 2:
            return (probs[:, 1] >= self.threshold).astype(int)
        return probs.argmax(axis=1)

    def labels_of(self, probs: np.ndarray, groups: pd.Series | None = None) -> list[str]:
        """Label names from class probabilities (see :meth:`labels_ids`)."""
        assert self.label_names is not None
        return [self.label_names[i] for i in self.labels_ids(probs, groups)]

    def examples_of(self, frame: pd.DataFrame, source: str) -> Examples:
        """Rows of a table as model input, with the column mapping and cleaning of training."""
        return Examples(frame_to_texts(frame, self.data_config, source), None, None, source,
                        feature_frame(frame, self.data_config, source),
                        instructions=instructions_of(frame, self.data_config, source),
                        pairs=pairs_of(frame, self.data_config, source))

    def prediction_columns(self, out: np.ndarray | list[str], frame: pd.DataFrame | None = None) -> dict[str, Any]:
        """Columns to append to input rows: predicted label and one probability per class
        (the answer, for generation).

        With per-group thresholds, ``frame`` must hold the group column.
        """
        if self.task == "regression":
            return {"prediction": out}
        if self.task == "generation":
            return {"generated": list(out)}
        assert self.label_names is not None
        groups = None
        if self.group_thresholds is not None and frame is not None:
            column = self.group_thresholds.column
            if column not in frame.columns:
                raise DataError(f"this model decides with per-group thresholds on '{column}', and the input "
                                f"has no such column; add it", column=column)
            groups = frame[column]
        cols: dict[str, Any] = {"predicted_label": self.labels_of(out, groups)}
        for i, name in enumerate(self.label_names):
            cols[f"prob_{name}"] = out[:, i]
        return cols


def _prompt(tokenizer: Any, meta: dict[str, Any]) -> PromptFormat | GenerationFormat | None:
    """The prompt of a causal LM run: label words to score, or the template to answer."""
    prompt = meta.get("prompt")
    if not prompt:
        return None
    if meta["task"] == "generation":
        return GenerationFormat(tokenizer, prompt["template"])
    return PromptFormat(tokenizer, prompt["template"], prompt["label_words"])


def _adapter_base(folder: Path, meta: dict[str, Any]) -> str | None:
    """The base model under a PEFT adapter saved in ``folder`` (None: no adapter there).

    The registry name resolves on this machine; the recorded path is the fallback.
    """
    if not (folder / ADAPTER).exists():
        return None
    return resolve_backbone(meta["backbone"]) if "backbone" in meta else meta["base_model"]


def _unlabelled(examples: Examples) -> Examples:
    return Examples(examples.texts, None, None, examples.source, tokens=examples.tokens)


def _load_causal(folder: Path, meta: dict[str, Any], tokenizer: Any) -> torch.nn.Module:
    """The LM (or base + LoRA adapter): as it is for generation, else a classifier over the
    label words of its prompt."""
    if (folder / ADAPTER).exists():
        from peft import PeftModel

        base_path = _adapter_base(folder, meta)
        lm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path, use_safetensors=True), folder)
    else:
        lm = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    prompt = _prompt(tokenizer, meta)
    if isinstance(prompt, GenerationFormat):
        return lm
    return CausalClassifier(lm, prompt.label_ids, tokenizer.pad_token_id)
