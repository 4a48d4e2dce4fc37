from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fintune.config import (
    PretrainConfig, RunConfig, apply_override, dump_config, load_config, load_pretrain_config, validate_config,
    validate_pretrain,
)
from fintune.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
PRETRAIN_CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "pretrain").glob("*.yaml"))
LABEL_CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "labeling").glob("*.yaml"))
MINIMAL = {"data": {"train": "x.csv", "text_column": "text"}}


def test_configs_are_shipped() -> None:
    # Every YAML under configs/ is loaded by one of the tests below: run configs here, deploy
    # and accelerate configs further down. A new folder of configs needs its own loading test.
    root = Path(__file__).parent.parent / "configs"
    tested = (set(CONFIGS) | set(DEPLOY_CONFIGS) | set(PRETRAIN_CONFIGS) | set(LABEL_CONFIGS)
              | {root / "accelerate" / "multi_node.yaml"})
    assert set(root.rglob("*.yaml")) == tested
    # One shipped config for each strategy and each model kind a user may copy from.
    loaded = [load_config(p) for p in CONFIGS]
    assert {"full", "freeze", "gradual", "lora", "qlora", "prompt", "ptuning", "setfit"} <= {c.strategy.name for c in loaded}
    assert {"text", "long_text", "probe", "fusion", "causal"} <= {c.model.kind for c in loaded}
    assert {"classification", "regression", "generation", "token_classification", "multi_label", "relation"} <= {
        c.task for c in loaded}


def test_validating_a_config_imports_neither_torch_nor_transformers() -> None:
    import subprocess
    import sys

    code = ("import sys; from fintune.config import load_config, load_pretrain_config; "
            f"[load_config(p) for p in {[str(p) for p in CONFIGS]!r}]; "
            f"[load_pretrain_config(p) for p in {[str(p) for p in PRETRAIN_CONFIGS]!r}]; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", LABEL_CONFIGS, ids=[p.name for p in LABEL_CONFIGS])
def test_every_shipped_label_config_loads(path: Path) -> None:
    from fintune.config.loading import load_label_config

    cfg = load_label_config(path)
    assert Path(cfg.data.path).is_absolute() and {f.kind for f in cfg.functions} <= {"keywords", "regex", "lexicon",
                                                                                    "model"}


@pytest.mark.parametrize("path", PRETRAIN_CONFIGS, ids=[p.name for p in PRETRAIN_CONFIGS])
def test_every_shipped_pretrain_config_loads(path: Path) -> None:
    cfg = load_pretrain_config(path)
    assert isinstance(cfg, PretrainConfig)
    assert validate_pretrain(yaml.safe_load(dump_config(cfg))) == cfg
    assert cfg.corpus.exclude, "a shipped pretraining config shows the leakage guard"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    # What a run writes as config.yaml must load back to the same config.
    assert validate_config(yaml.safe_load(dump_config(cfg))) == cfg


@pytest.mark.parametrize(("raw", "expected"), [
    ({**MINIMAL, "trian": {}}, "unknown key 'trian'; did you mean 'train'?"),
    ({"data": {**MINIMAL["data"], "label_colum": "y"}}, "did you mean 'data.label_column'?"),
    ({**MINIMAL, "strategy": {"name": "freeze", "trainable_layer": 1}}, "did you mean 'strategy.trainable_layers'?"),
    ({**MINIMAL, "train": {"early_stopping": {"patiense": 1}}}, "did you mean 'train.early_stopping.patience'?"),
    ({**MINIMAL, "strategy": {"name": "lorra"}}, "unknown strategy 'lorra'"),
    ({"data": {"train": "x.csv"}}, "set data.text_column, data.messages_column (conversations) or data.feature_columns"),
    ({"data": {"train": "x.csv", "text_column": "t", "feature_columns": ["a"]}},
     "model.kind 'text' reads one input"),
    ({"data": {"train": "x.csv", "text_column": "t"}, "model": {"kind": "fusion"}},
     "model.kind 'fusion' needs data.feature_columns"),
    ({"data": {"train": "x.csv", "text_column": "t", "feature_columns": ["a"]}, "model": {"kind": "gbm"}},
     "uses the features alone; remove data.text_column"),
    ({"data": {"train": "x.csv", "feature_columns": ["a"]}, "model": {"kind": "fusion"}, "strategy": "lora"},
     "model.kind 'fusion' trains with strategy full or freeze or gradual, not 'lora'"),
    ({"data": {"train": "x.csv", "feature_columns": ["a"], "categories": {"b": {"1": "x"}}}},
     "name b, which are not in data.feature_columns"),
    ({"data": {"train": "x.csv", "feature_columns": ["a"], "windows": {"lags": 3}}},
     "data.windows needs data.date_column"),
    ({"data": {"train": "x.csv", "feature_columns": ["a"], "date_column": "d", "windows": {"target": "direction"}},
      "task": "regression"}, "'direction' is a classification task"),
    ({**MINIMAL, "task": "generation"}, "task generation needs model.kind causal"),
    ({"data": {**MINIMAL["data"], "instruction_column": "i"}, "model": {"kind": "causal"}},
     "data.instruction_column is for task generation"),
    ({**MINIMAL, "train": {"lr": -1}}, "train.lr"),
    ({}, "missing required key 'data'"),
])
def test_invalid_configs_say_what_to_fix(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    assert expected in str(err.value)


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    cfg = load_config(path, ["train.lr=3e-5", "strategy.name=freeze", "strategy.trainable_layers=2",
                             "data.clean.replace_urls=true"])
    assert cfg.train.lr == 3e-5 and cfg.strategy.trainable_layers == 2 and cfg.data.clean.replace_urls


def test_malformed_override() -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_override({}, "train.lr")


def test_label_map_keys_are_text() -> None:
    cfg = validate_config({"data": {**MINIMAL["data"], "label_map": {0: "Bearish", 1: "Bullish"}}})
    assert cfg.data.label_map == {"0": "Bearish", "1": "Bullish"}


DEPLOY_CONFIGS = sorted((Path(__file__).parent.parent / "configs" / "deploy").glob("*.yaml"))


@pytest.mark.parametrize("path", DEPLOY_CONFIGS, ids=[p.name for p in DEPLOY_CONFIGS])
def test_every_shipped_deploy_config_loads(path: Path) -> None:
    from fintune.config import DeployConfig
    from fintune.deploy import deploy_config

    assert isinstance(deploy_config(None, path), DeployConfig)


def test_deploy_config_layers_run_file_and_overrides(tmp_path: Path) -> None:
    from fintune.deploy import deploy_config

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**MINIMAL, "deploy": {
        "serve": {"port": 9001, "max_texts": 5, "max_batch_size": 4}, "export": {"max_metric_drop": 2.0}}}))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"serve": {"max_texts": 7}}))
    cfg = deploy_config(run / "model", tmp_path / "d.yaml", ["serve.max_wait_ms=2"])
    # The run folder suggests batching only; port and limits are the operator's (or the defaults).
    assert (cfg.serve.port, cfg.serve.max_texts, cfg.serve.max_wait_ms, cfg.serve.max_batch_size) == (8000, 7, 2, 4)
    assert cfg.export.max_metric_drop == 2.0
    with pytest.raises(ConfigError, match="did you mean 'serve.max_texts'"):
        deploy_config(run, None, ["serve.max_text=3"])
    with pytest.raises(ConfigError, match="warn level"):
        deploy_config(None, None, ["monitor.psi_warn=0.5"])


def test_the_accelerate_config_is_valid() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(__file__).parent.parent / "configs" / "accelerate" / "multi_node.yaml"
    config = load_config_from_file(str(path))
    assert config.distributed_type == "MULTI_GPU" and (config.num_machines, config.num_processes) == (2, 8)


def test_paths_resolve_against_the_config_file_and_overrides_against_the_current_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(yaml.safe_dump({
        "output_dir": "../runs/x",
        "data": {"train": "data/train.csv", "validation": "/abs/valid.csv", "text_column": "text"},
        "model": {"backbone": "./encoders/mine"},
    }))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(folder / "run.yaml", ["data.test=held.csv"])
    assert cfg.output_dir == str(tmp_path / "project" / "runs" / "x")
    assert cfg.data.train == str(folder / "data" / "train.csv")
    assert cfg.data.validation == "/abs/valid.csv"  # absolute: unchanged
    assert cfg.model.backbone == str(folder / "encoders" / "mine")
    assert cfg.data.test == "held.csv"  # a command-line override: relative to the current folder
    # Names and Hub ids are not paths; neither are Hub dataset ids.
    (folder / "hub.yaml").write_text(yaml.safe_dump({
        "data": {"train": "takala/financial_phrasebank", "format": "hub", "text_column": "sentence"},
        "model": {"backbone": "ProsusAI/finbert"}}))
    hub = load_config(folder / "hub.yaml")
    assert hub.data.train == "takala/financial_phrasebank" and hub.model.backbone == "ProsusAI/finbert"


def test_pretrain_corpus_paths_resolve_against_the_config_file(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "p.yaml").write_text(yaml.safe_dump({
        "output_dir": "out", "corpus": {"sources": ["notes/", {"path": "a.parquet", "text_column": "body"}],
                                        "exclude": ["valid.csv"], "text_column": "text"}}))
    cfg = load_pretrain_config(folder / "p.yaml")
    assert [s.path for s in cfg.corpus.sources] == [str(folder / "notes"), str(folder / "a.parquet")]
    assert cfg.corpus.exclude[0].path == str(folder / "valid.csv") and cfg.output_dir == str(folder / "out")


@pytest.mark.parametrize("path", [p for p in CONFIGS if "../../shared/data" in p.read_text()],
                         ids=lambda p: p.name)
def test_shipped_configs_find_the_shared_data_from_any_folder(path: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path)
    shared = (Path(__file__).parent.parent.parent / "shared" / "data").resolve()
    assert Path(cfg.data.train).is_relative_to(shared)
    assert Path(cfg.output_dir).parent == (Path(__file__).parent.parent / "runs").resolve()
