"""The deploy settings: the operator's, with what a run folder may suggest underneath.

A run folder may come from someone else, so its own ``deploy`` section is not trusted with
security: of ``serve`` it may set the performance knobs alone (:data:`RUN_SERVE_KEYS`);
the API key, host, port, limits and the prediction log come from the operator (a deploy
YAML, ``--set`` overrides, the command line, the environment) or the defaults. Its
``export`` and ``monitor`` sections (the export check, drift thresholds) apply as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from fintune.config import DeployConfig, ServeConfig, apply_override, read_yaml_file, validate_deploy
from fintune.console import console
from fintune.errors import ConfigError

# What a run folder's own config may suggest for serving: how requests are batched.
RUN_SERVE_KEYS = ("max_batch_size", "max_wait_ms")


def deploy_config(run: str | Path | None, config: str | Path | None = None,
                  overrides: list[str] | tuple[str, ...] = ()) -> DeployConfig:
    """``deploy`` of RUN/config.yaml (serve: performance keys only), then ``config`` (the
    operator's YAML of ``export`` / ``serve`` / ``monitor`` sections), then
    ``serve.port=9000``-style overrides."""
    raw = run_suggestions(run)
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"deploy config not found: {path}")
        extra = read_yaml_file(path) or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"{path}: the top level must be a mapping (export, serve, monitor)")
        for section, values in extra.items():
            if isinstance(values, dict) and isinstance(raw.get(section), dict):
                raw[section] = {**raw[section], **values}
            else:
                raw[section] = values
    for item in overrides:
        apply_override(raw, item)
    return validate_deploy(raw, str(config or "deploy config"))


def run_suggestions(run: str | Path | None) -> dict[str, Any]:
    """The part of RUN/config.yaml's ``deploy`` that a run folder is trusted with."""
    run_config = _run_config_file(run)
    if run_config is None:
        return {}
    whole = read_yaml_file(run_config) or {}
    if not isinstance(whole, dict):
        raise ConfigError(f"{run_config}: not a valid run config (its deploy section cannot be read)")
    raw = whole.get("deploy") or {}
    if not isinstance(raw, dict):
        return {}
    validate_deploy(raw, str(run_config))  # a typo there is still an error, named
    serve = raw.get("serve") or {}
    # config.yaml holds every key with its default: only a value that differs was set.
    defaults = ServeConfig().model_dump(mode="json")
    ignored = sorted(k for k in serve if k not in RUN_SERVE_KEYS and serve[k] != defaults.get(k))
    if ignored:
        console.print(f"[yellow]note:[/] {run_config} sets deploy.serve {', '.join(ignored)}; a run folder may "
                      f"set only {', '.join(RUN_SERVE_KEYS)}, so the operator's settings (or the defaults) apply")
    out = {k: v for k, v in raw.items() if k in ("export", "monitor")}
    out["serve"] = {k: v for k, v in serve.items() if k in RUN_SERVE_KEYS}
    return out


def _run_config_file(run: str | Path | None) -> Path | None:
    """RUN/config.yaml, also for a model folder inside a run (RUN/model, RUN/onnx-int8)."""
    if run is None:
        return None
    for folder in (Path(run), Path(run).parent):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    return None
