"""The sections of the run config, each a typed model; unknown keys are errors.

Each section goes only to the code that needs it: ``data`` to
:func:`fintune.data.prepare_data`, ``model`` to the backbone loader, ``train`` to the
training loop, ``deploy`` to export, serving and monitoring.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fintune.config.files import FilesConfig
from fintune.config.strict import Strict
from fintune.tasks import task_names

# The registered tasks (fintune.tasks), in their order; a new task is registered there only.
Task = Literal[task_names()]  # type: ignore[valid-type]


class CleanConfig(Strict):
    """Text cleaning applied to every split, and at evaluation and prediction time."""

    unicode_nfkc: bool = True
    whitespace: bool = True
    replace_urls: bool = False
    replace_tickers: bool = False
    drop_duplicates: bool = True
    drop_conflicts: bool = True
    remove_overlap: bool = True
    drop_label_issues: bool = Field(False, description="drop training rows whose label looks wrong (cleanlab on "
                                    "out-of-fold probabilities of a quick model, as `fintune data check "
                                    "--label-issues` lists them); validation and test are kept as they are")


class SplitConfig(Strict):
    """How to carve validation/test sets out of ``data.train`` when files are not given."""

    method: Literal["stratified", "random", "time", "document"] = Field(
        "stratified", description="document (token_classification): hold out whole documents (CoNLL -DOCSTART-), "
                                  "validation_size and test_size as shares of the documents")
    validation_size: float = Field(0.1, gt=0, lt=1)
    test_size: float = Field(0.1, ge=0, lt=1)
    gap: int = Field(0, ge=0, description="time split: rows dropped before each cut, so targets "
                     "that span several steps never straddle train and evaluation")
    fold: int | None = Field(None, ge=0, description="walk-forward: test on time block fold + 1 of "
                             "folds + 1, train on the blocks before it (set by `fintune walk-forward`)")
    folds: int = Field(5, ge=1)
    max_train_rows: int | None = Field(None, ge=2, description="train on a random (stratified) sample of "
                                       "this many training rows; validation and test stay whole")


class WindowConfig(Strict):
    """Time series: each row becomes a window of lagged values of ``data.feature_columns``.

    Row t gets the values at t - horizon, ..., t - horizon - lags + 1 of every series, plus
    rolling means and standard deviations over those past values; its target is row t's
    ``data.label_column``. Nothing at or after t enters the features, so a window never
    sees the value it predicts.
    """

    lags: int = Field(5, ge=1)
    horizon: int = Field(1, ge=1, description="steps between the newest input value and the target")
    rolling: list[int] = Field(default_factory=lambda: [5, 20],
                               description="windows (in steps) for rolling mean and volatility")
    target: Literal["value", "direction"] = Field(
        "value", description="'direction': the label is Up/Down by the sign of label_column")
    keep_columns: list[str] = Field(default_factory=list,
                                    description="same-row columns known in advance, e.g. day_of_week")


# Personal-data types, in the order that wins when two detections overlap.
# On overlap the earlier type wins: a context word ("account number", "sort code") says more
# than a checksum that one random number in ten passes, and both more than the phone pattern.
# In order of precedence where two detections overlap (an identity number holds a phone-like run).
PII_TYPES = ("EMAIL", "IBAN", "SSN", "CN_ID", "CN_USCC", "SORT_CODE", "ACCOUNT", "CN_MOBILE", "CARD", "SWIFT", "IP",
             "DOB", "PHONE", "PERSON")
PiiType = Literal["EMAIL", "IBAN", "SSN", "CN_ID", "CN_USCC", "SORT_CODE", "ACCOUNT", "CN_MOBILE", "CARD", "SWIFT", "IP",
                  "DOB", "PHONE", "PERSON"]
# On by default: the types whose precision on real financial text is at least 0.95. PERSON and
# PHONE miss it (tests/data/fixtures/masking_labels.json: 308 PERSON detections on TFNS tweets
# and SEC filings, 35% correct: company, place and firm names, "Borrower", headline words, URL
# fragments; PHONE took an amount table), so they are off unless named in data.privacy.types.
DEFAULT_PII_TYPES = tuple(t for t in PII_TYPES if t not in ("PHONE", "PERSON"))


class PrivacyConfig(Strict):
    """Masking of personal data in text (``fintune.data.privacy``), before training and at
    prediction and serving time alike."""

    mask: bool | None = Field(None, description="null: on when the model reads free text (data.text_column)")
    types: list[PiiType] = Field(default_factory=lambda: list(DEFAULT_PII_TYPES),
                                 description="default: all but PERSON and PHONE (too imprecise on financial text)")
    mode: Literal["tag", "pseudonym"] = Field("tag", description="tag: <CARD>; pseudonym: <CARD_5f1c09a2>, "
                                              "the same value gives the same token (keyed hash)")
    secret_env: str = Field("FINTUNE_PRIVACY_SECRET", description="environment variable with the pseudonym key")
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB"],
                                     description="regions whose national phone formats are recognized")


def _scalar_text(value: Any, key: str) -> str:
    """A label or code name as text; a list or mapping there is refused rather than printed,
    which for a YAML alias chain would be billions of characters."""
    if isinstance(value, (dict, list, tuple, set)):
        raise ValueError(f"{key}: each value must be a single name (text or number), not a {type(value).__name__}")
    return str(value)


class DataConfig(Strict):
    """Where the data is and which columns mean what."""

    train: str
    validation: str | None = None
    test: str | None = None
    format: Literal["auto", "csv", "jsonl", "parquet", "conll", "hf_disk", "hub"] = "auto"
    encoding: str = "utf-8"
    text_column: str | None = None
    instruction_column: str | None = Field(None, description="generation: a column with each record's "
                                           "instruction (FinGPT's instruction/input/output records)")
    messages_column: str | None = Field(None, description="generation: a column holding each record's "
                                        "conversation, OpenAI 'messages' (role, content) or ShareGPT "
                                        "'conversations' (from, value); every assistant turn is learned, the last "
                                        "one is the reference answer; instead of text_column and label_column")
    rejected_column: str | None = Field(None, description="generation with strategy dpo: a column with each "
                                        "prompt's rejected answer (data.label_column holds the chosen one)")
    pair_column: str | None = Field(None, description="a second text read with the first as a pair, e.g. "
                                    "the target whose sentiment is asked (FiQA-2018 task 1)")
    entity_columns: list[str] | None = Field(None, min_length=2, max_length=2, description="task relation: the "
                                             "columns naming the head and the tail entity; the text reads them "
                                             "marked, <e1>head</e1> ... <e2>tail</e2>")
    weight_column: str | None = Field(None, description="a column of row weights (>= 0) for the training loss, "
                                      "e.g. the confidence column `fintune label` writes; evaluation is unweighted")
    tokens_column: str | None = Field(None, description="token_classification: a column with each "
                                      "sentence's words (a list); CoNLL files read as 'tokens' and 'tags'")
    tag_scheme: Literal["io", "bio", "bioes"] | None = Field(
        None, description="token_classification: the scheme to train in (tags are converted); "
        "default: the scheme of the training file")
    feature_columns: list[str] | None = None
    label_column: str = "label"
    label_names: list[str] | None = None
    label_separator: str | None = Field(None, min_length=1, description="task multi_label: the character that "
                                        "separates a row's labels in one text cell, e.g. ' ' or ';' (JSON lists and "
                                        "Parquet lists need none)")
    label_map: dict[str, str] | None = None
    date_column: str | None = None
    categorical_columns: list[str] | None = Field(
        None, description="feature columns to one-hot even when they hold numbers; text columns always are")
    categories: dict[str, dict[str, str]] | None = Field(
        None, description="codes to names per column, for the text template only, e.g. SEX: {1: male}")
    column_names: dict[str, str] | None = Field(None, description="readable names for the text template")
    windows: WindowConfig | None = None
    files: FilesConfig | None = Field(None, description="read images, PDFs and audio named in a column (or a "
                                      "folder) into data.text_column: OCR and speech-to-text, cached by content")
    leak_check: bool = Field(True, description="reject a feature that alone predicts the target "
                             "almost perfectly on training rows (a leak, or future information)")
    clean: CleanConfig = CleanConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    split: SplitConfig = SplitConfig()

    @field_validator("label_map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `0: Bearish` with an int key; raw labels are compared as text.
        return {str(k): _scalar_text(v, "data.label_map") for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("categories", mode="before")
    @classmethod
    def _codes_as_text(cls, value: Any) -> Any:
        # `SEX: {1: male}` reads 1 as an int; cells are matched by their printed form.
        if not isinstance(value, dict):
            return value
        return {str(col): ({str(k): _scalar_text(v, f"data.categories.{col}") for k, v in codes.items()}
                           if isinstance(codes, dict) else codes)
                for col, codes in value.items()}

    @model_validator(mode="after")
    def _one_input_kind(self) -> DataConfig:
        if (self.text_column is None and self.feature_columns is None and self.tokens_column is None
                and self.messages_column is None):
            raise ValueError("set data.text_column, data.messages_column (conversations) or data.feature_columns "
                             "(token_classification: "
                             "data.tokens_column)")
        if self.files is not None and self.text_column is None:
            raise ValueError("data.files reads each file into data.text_column; set data.text_column (e.g. text)")
        if self.pair_column is not None and self.text_column is None:
            raise ValueError("data.pair_column is read with data.text_column as a pair; set data.text_column")
        if self.split.method == "time" and self.date_column is None:
            raise ValueError("data.split.method 'time' needs data.date_column")
        if self.windows is not None:
            if self.date_column is None or self.feature_columns is None:
                raise ValueError("data.windows needs data.date_column and data.feature_columns (the series)")
            if self.text_column is not None:
                raise ValueError("data.windows builds its input from data.feature_columns; remove data.text_column")
        known = [*(self.feature_columns or []), *(self.windows.keep_columns if self.windows else [])]
        unknown = [c for c in [*(self.categorical_columns or []), *(self.categories or {})] if c not in known]
        if unknown:
            raise ValueError(f"data.categorical_columns/categories name {', '.join(unknown)}, "
                             "which are not in data.feature_columns")
        return self


class EarlyStoppingConfig(Strict):
    metric: str | None = None  # default: weighted_f1 (classification) or mse (regression)
    mode: Literal["max", "min"] | None = None  # default: from the metric's name
    patience: int = Field(2, ge=1)


class DPConfig(Strict):
    """DP-SGD: the (epsilon, delta) budget of the whole run and the per-example clipping bound."""

    epsilon: float = Field(gt=0, description="privacy budget; smaller is more private (1 strong, 8 weak)")
    delta: float = Field(1e-5, gt=0, lt=1, description="keep below 1 / number of training rows")
    max_grad_norm: float = Field(1.0, gt=0, description="each example's gradient is clipped to this L2 norm")


class TrainPrivacyConfig(Strict):
    dp: DPConfig | None = None


class TrainConfig(Strict):
    """Hyperparameters of the one training loop."""

    epochs: int = Field(3, ge=0, description="0 trains nothing: the model is evaluated and saved as it is "
                        "(a zero-shot baseline of a causal LM scoring label words)")
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    lr: float = Field(5e-5, gt=0)
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="sgd: SGD with momentum 0.9 (and weight "
                                               "decay), whose steps do not rescale each coordinate: under DP-SGD's "
                                               "noise AdamW turns tiny noisy gradients into full-size steps")
    head_lr: float | None = Field(None, gt=0, description="learning rate of the task head; default: lr")
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    warmup_steps: int | None = Field(None, ge=0)  # wins over warmup_fraction when set
    max_grad_norm: float | None = Field(1.0, gt=0)
    class_weights: bool = False
    loss: Literal["cross_entropy", "focal"] = "cross_entropy"
    focal_gamma: float = Field(2.0, ge=0)
    oversample: bool = False  # classification: minority rows repeated until classes are even
    group_by_length: bool = True
    packing: bool | Literal["auto"] = Field(
        "auto", description="several rows in one sequence of up to model.max_length tokens, attention kept inside "
        "each row: the same logits and gradients as padding, in fewer and fuller sequences. auto: where it is "
        "exact (BERT, MPNet, RoBERTa, XLM-R, Llama and Qwen sequence classifiers, Llama/Qwen2/Mistral instruction "
        "tuning; one process, no DP-SGD, no prompt learning), for classifiers only where batches are not "
        "length-grouped (grouped batches have few pads and train faster padded on a CPU); true: pack wherever "
        "exact (an error says why where it cannot); false: pad every row")
    batch_tokens: int | None = Field(
        None, ge=1, description="batches by tokens instead of rows: length-grouped rows are cut into batches of at "
        "most this many real tokens (rows per batch vary, tokens stay steady). The loss is still the mean over a "
        "batch's rows, and the schedule counts the first epoch's batches; batch_size then only sets how many rows "
        "are length-grouped together (batch_size x 50)")
    compile: bool = Field(False, description="torch.compile the training forward (dynamic shapes). Measured on "
                          "MiniLM here: 7% faster steps after about 70 s of compiling, so it pays back on runs "
                          "over about 17 minutes of training; needs a working C++ compiler")
    eval_every: int | None = Field(None, ge=1)  # steps; None evaluates after each epoch
    checkpoint_every: int = Field(200, ge=0)  # steps; 0 turns checkpoints off
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    eval_precision: Literal["auto", "fp32", "bf16"] = Field(
        "fp32", description="the final evaluation of the held-out splits: fp32 (the numbers a served fp32 model "
        "gives), or auto / bf16, about twice as fast for large models where bf16 is native")
    num_threads: int | None = Field(None, ge=1)
    grad_accum_steps: int = Field(1, ge=1, description="micro-batches per optimizer step; batch_size is the "
                                  "micro-batch")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass: less "
                                         "memory, about a third more time")
    privacy: TrainPrivacyConfig = TrainPrivacyConfig()


class DecisionConfig(Strict):
    """Classification: calibration, and (binary tasks) how the threshold on P(positive) is
    chosen on validation data.

    The positive class is the second label (``data.label_names[1]``). The chosen threshold
    is saved with the model and used by evaluate, predict and the final metrics.
    """

    temperature_scaling: bool = Field(True, description="fit a softmax temperature on validation data "
                                      "(calibrated probabilities; the argmax never changes)")
    threshold: Literal["argmax", "max_f1", "recall", "cost"] = "argmax"
    target_recall: float = Field(0.8, gt=0, le=1)
    cost_false_negative: float = Field(1.0, ge=0, description="e.g. a missed default")
    cost_false_positive: float = Field(1.0, ge=0, description="e.g. a rejected good customer")
    label_thresholds: Literal["per_label", "global", "fixed"] = Field(
        "per_label", description="task multi_label: each label's F1-best threshold on validation (a label with "
        "under 5 validation rows takes the global one), one F1-best threshold for all labels, or 0.5")


class ParamSpace(Strict):
    """One searched hyperparameter: a float or int range, or a list of choices."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> ParamSpace:
        if self.type == "categorical" and not self.choices:
            raise ValueError("a categorical parameter needs choices: [...]")
        if self.type != "categorical" and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError(f"a {self.type} parameter needs low <= high")
        return self


# `track.register` is the name users know (the issue's, MLflow's verb). pydantic warns that it
# shadows ABCMeta.register, a method of the metaclass that instances never see, so
# `cfg.register` is the field; the warning is silenced for this class only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class TrackConfig(Strict):
        """Experiment tracking (``track:`` or ``fintune train --track``): each finished run is logged
        to MLflow (params, metrics per evaluation, final metrics, plots, report, card, model) and,
        when asked, to TensorBoard. Nothing is logged unless one of them is on."""

        mlflow: bool = Field(False, description="log the run to MLflow")
        tracking_uri: str | None = Field(None, description="MLflow tracking URI; default: the SQLite store "
                                         "sqlite:///<folder of output_dir>/mlflow.db (no server needed)")
        experiment: str = Field("fintune", description="MLflow experiment name")
        log_model: bool = Field(True, description="also log the model: its folder as an artifact and an MLflow "
                                "pyfunc model (signature, input example) that mlflow.pyfunc.load_model reads")
        register: str | None = Field(None, description="register the logged model under this name in MLflow's "
                                     "model registry (a new version per run), for promotion by alias or stage")
        tensorboard: bool = Field(False, description="write TensorBoard scalars to RUN/tensorboard")


class TuneConfig(Strict):
    """Hyperparameter search (``fintune tune``): keys of ``space`` are dotted config paths."""

    trials: int = Field(20, ge=1)
    metric: str | None = None  # default: the task's primary metric
    pruning: bool = True
    startup_trials: int = Field(2, ge=0, description="trials that run in full before pruning starts")
    space: dict[str, ParamSpace] = Field(default_factory=dict)


class DistillConfig(Strict):
    """Soft-target distillation: temperature T and the weight alpha of the teacher's loss."""

    temperature: float = Field(2.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)


class ExportConfig(Strict):
    """``fintune export --format onnx``: the check of the exported model against torch."""

    opset: int = Field(18, ge=14)
    max_metric_drop: float = Field(0.5, ge=0, description="points (x100) of the primary metric the "
                                   "exported model may lose on held-out data before export refuses")
    check_rows: int | None = Field(None, ge=1, description="held-out rows to check; null: all")


class PredictionLogConfig(Strict):
    """What the server records per prediction (SQLite)."""

    enabled: bool = True
    path: str | None = Field(None, description="default: RUN/serve/predictions.sqlite")
    raw_text: bool = Field(False, description="store the input text; off: only its hash, length and a "
                           "32-number sketch of the sentence vector")
    hash_secret_env: str = Field("FINTUNE_LOG_SECRET", description="environment variable with the key of the "
                                 "input hash (HMAC-SHA256); unset: no hash is stored, so a guessed text cannot "
                                 "be found in the log")


class ServeConfig(Strict):
    """``fintune serve``: micro-batching, limits, and access."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_batch_size: int = Field(32, ge=1, description="texts per forward pass")
    max_wait_ms: float = Field(5.0, ge=0, description="how long a request may wait for others to join its batch")
    max_texts: int = Field(64, ge=1, description="texts or rows per request")
    max_text_chars: int = Field(4000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_upload_bytes: int = Field(20_000_000, ge=1, description="/v1/predict/files: the whole upload (scans, "
                                  "PDFs, recordings); each file must be of a type data.files reads")
    api_key_env: str | None = Field("FINTUNE_API_KEY", description="environment variable holding the API "
                                    "key; when it is set, requests need the X-API-Key header")
    require_api_key: bool | None = Field(None, description="refuse to start without an API key; null: required "
                                         "when host is not a loopback address")
    threads: int | None = Field(None, ge=1, description="torch / onnxruntime threads; default: all cores")
    explain_queue: int = Field(4, ge=1, description="explanations running or waiting at once; more get 503 "
                               "with Retry-After (they run one at a time on a thread of their own)")
    graceful_timeout_s: float = Field(30.0, gt=0, description="on shutdown, how long in-flight requests may finish")
    header_timeout_s: float = Field(10.0, gt=0, le=300, description="a client must send a request's headers within "
                                    "this many seconds, or it is disconnected (slow-header clients)")
    max_new_tokens: int = Field(512, ge=1, description="generation runs: most tokens one answer may ask for "
                                "(/v1/chat/completions max_tokens)")
    chat_queue: int = Field(8, ge=0, description="generation runs: answers that may wait while one is generated; "
                            "more get 503 with Retry-After")
    log: PredictionLogConfig = PredictionLogConfig()


class MonitorConfig(Strict):
    """``fintune monitor``: drift of logged traffic against the training data."""

    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    embedding_auc_warn: float = Field(0.65, gt=0.5, le=1, description="domain classifier ROC-AUC, "
                                      "logged vs training sentence vectors")
    embedding_auc_alert: float = Field(0.8, gt=0.5, le=1)
    mmd_p_warn: float = Field(0.01, gt=0, lt=1, description="MMD permutation-test p-value below which "
                              "the sentence vectors warn (never alert: with many rows a tiny shift is significant)")
    reference_rows: int = Field(2000, ge=50, description="training rows sampled as the reference")
    min_rows: int = Field(50, ge=10, description="fewer logged rows give the verdict 'insufficient'")

    @model_validator(mode="after")
    def _ordered(self) -> MonitorConfig:
        if self.psi_warn > self.psi_alert or self.embedding_auc_warn > self.embedding_auc_alert:
            raise ValueError("each warn level must not exceed its alert level")
        return self


class DeployConfig(Strict):
    """Export, serving and monitoring of a finished run."""

    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    monitor: MonitorConfig = MonitorConfig()


