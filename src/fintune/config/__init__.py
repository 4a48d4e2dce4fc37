"""The run config: a tree of typed, validated models loaded from YAML.

- :mod:`fintune.config.sections`: the sections (data, train, decision, deploy, ...);
- :mod:`fintune.config.model_kinds`: ``model``, one typed config per kind (a discriminated union);
- :mod:`fintune.config.schema`: :class:`RunConfig`, the whole run;
- :mod:`fintune.config.rules`: rules across sections, asking the strategy registry;
- :mod:`fintune.config.files`: ``data.files``, scans, PDFs and recordings read into text;
- :mod:`fintune.config.pretrain`: :class:`PretrainConfig`, continued pretraining (its own file);
- :mod:`fintune.config.loading`: YAML, overrides, and error messages that say what to fix.

Nothing here imports torch or transformers: validating a config is cheap.
"""

from fintune.config.loading import (
    apply_override, dump_config, load_config, load_pretrain_config, validate_config, validate_deploy, validate_pretrain,
)
from fintune.config.files import FilesConfig
from fintune.config.pretrain import CorpusConfig, CorpusSource, MaskingConfig, PretrainConfig
from fintune.config.kind_sections import BowConfig, EnsembleConfig, GBMConfig, LinearConfig, LongTextConfig
from fintune.config.model_kinds import KIND_MODELS, ModelBase, ModelConfig, as_kind, model_config, readers_of
from fintune.config.schema import RunConfig
from fintune.config.yamlfile import parse_yaml, read_yaml_file
from fintune.config.sections import (
    DEFAULT_PII_TYPES, PII_TYPES, CleanConfig, DataConfig, DecisionConfig, DeployConfig, DistillConfig, DPConfig,
    EarlyStoppingConfig, ExportConfig, MonitorConfig, ParamSpace, PiiType,
    PredictionLogConfig, PrivacyConfig, ServeConfig, SplitConfig, Strict, Task, TrainConfig,
    TrackConfig, TrainPrivacyConfig, TuneConfig, WindowConfig,
)

__all__ = [
    "DEFAULT_PII_TYPES", "PII_TYPES", "CleanConfig", "DPConfig", "DataConfig", "DecisionConfig", "DeployConfig", "DistillConfig",
    "EarlyStoppingConfig", "EnsembleConfig", "ExportConfig", "FilesConfig", "GBMConfig", "LinearConfig", "LongTextConfig", "ModelConfig", "MonitorConfig", "ParamSpace", "PiiType",
    "PredictionLogConfig", "PrivacyConfig", "RunConfig", "ServeConfig", "SplitConfig", "Strict", "Task",
    "TrackConfig", "TrainConfig", "TrainPrivacyConfig", "TuneConfig", "WindowConfig", "apply_override", "dump_config",
    "load_config", "validate_config", "validate_deploy", "CorpusConfig", "CorpusSource", "MaskingConfig",
    "PretrainConfig", "load_pretrain_config", "validate_pretrain", "parse_yaml", "read_yaml_file",
    "BowConfig", "KIND_MODELS", "ModelBase", "as_kind", "model_config", "readers_of",
]
