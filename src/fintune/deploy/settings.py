"""The ``deploy`` part of a run's config, with a deploy YAML and overrides on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fintune.config import DeployConfig, apply_override, validate_deploy
from fintune.errors import ConfigError


def deploy_config(run: str | Path | None, config: str | Path | None = None,
                  overrides: list[str] | tuple[str, ...] = ()) -> DeployConfig:
    """``deploy`` of RUN/config.yaml (defaults when absent), then ``config`` (a YAML of
    ``export`` / ``serve`` / ``monitor`` sections), then ``serve.port=9000``-style overrides."""
    raw: dict[str, Any] = {}
    run_config = _run_config_file(run)
    if run_config is not None:
        raw = (yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}).get("deploy") or {}
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"deploy config not found: {path}")
        extra = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"{path}: the top level must be a mapping (export, serve, monitor)")
        for section, values in extra.items():
            if isinstance(values, dict) and isinstance(raw.get(section), dict):
                raw[section] = {**raw[section], **values}
            else:
                raw[section] = values
    for item in overrides:
        apply_override(raw, item)
    return validate_deploy(raw, str(config or run_config or "deploy config"))


def _run_config_file(run: str | Path | None) -> Path | None:
    """RUN/config.yaml, also for a model folder inside a run (RUN/model, RUN/onnx-int8)."""
    if run is None:
        return None
    for folder in (Path(run), Path(run).parent):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    return None
