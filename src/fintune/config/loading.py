"""Loading a run config: YAML, ``a.b=value`` overrides, and errors that say what to fix.

Unknown keys are errors that name the key and the nearest valid one, so a typo never
silently becomes a default.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from fintune.config.labeling import LabelConfig
from fintune.config.model_kinds import KIND_MODELS
from fintune.config.pretrain import PretrainConfig
from fintune.config.schema import RunConfig
from fintune.config.sections import DeployConfig
from fintune.config.yamlfile import parse_yaml, read_yaml_file
from fintune.errors import ConfigError
from fintune.strategies import STRATEGIES, StrategyConfig

def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config, resolve its relative paths against the file's folder (see
    :func:`resolve_paths`), apply ``a.b=value`` overrides, and validate it."""
    raw = resolve_paths(read_yaml(path), Path(path).parent, RUN_PATHS)
    return validate_config(_overridden(raw, overrides), source=str(path))


def load_pretrain_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainConfig:
    """Read a pretraining YAML config (``fintune pretrain``), resolve its paths, apply overrides, and validate it."""
    raw = resolve_paths(read_yaml(path), Path(path).parent, PRETRAIN_PATHS)
    return validate_pretrain(_overridden(raw, overrides), source=str(path))


def load_label_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LabelConfig:
    """Read a weak-labeling YAML config (``fintune label``), resolve its paths, apply overrides, and validate it."""
    raw = _overridden(resolve_paths(read_yaml(path), Path(path).parent, LABEL_PATHS), overrides)
    return _validated(LabelConfig, raw, str(path), "label config")


# The keys that hold paths ("[]": each item of a list, as a string or as a mapping's key).
RUN_PATHS = ("output_dir", "data.train", "data.validation", "data.test", "model.backbone")
LABEL_PATHS = ("data.path", "output", "functions[].run")
PRETRAIN_PATHS = ("output_dir", "corpus.sources[].path", "corpus.exclude[].path", "backbone")


def resolve_paths(raw: dict[str, Any], base: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Relative paths of a config file, made absolute against ``base`` (the file's folder), so
    a config works from any folder. Absolute paths stay; Hub dataset ids (``data.format:
    hub``) stay; a backbone is a path only when it starts with ``./`` or ``../`` (otherwise it
    is a catalogue name or a Hub id such as ``ProsusAI/finbert``). Overrides given on the
    command line are not resolved here: they are relative to the current folder."""
    base = base.resolve()
    hub = isinstance(raw.get("data"), dict) and raw["data"].get("format") == "hub"

    def fix(value: Any, key: str) -> Any:
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            return value
        if key.endswith("backbone") and not value.startswith(("./", "../")):
            return value
        if key.startswith("data.") and hub:
            return value
        return str((base / value).resolve())

    def visit(node: Any, parts: list[str], key: str) -> None:
        name, rest = parts[0].removesuffix("[]"), parts[1:]
        if not isinstance(node, dict) or name not in node:
            return
        if not rest:
            node[name] = fix(node[name], key)
        elif parts[0].endswith("[]") and isinstance(node[name], list):
            # Each item: a path given as a plain string, or a mapping holding it.
            node[name] = [fix(item, key) if isinstance(item, str) else item for item in node[name]]
            for item in node[name]:
                visit(item, rest, key)
        else:
            visit(node[name], rest, key)

    for key in keys:
        visit(raw, key.split("."), key)
    return raw


def _overridden(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    for item in overrides:
        apply_override(raw, item)
    return raw


def validate_pretrain(raw: dict[str, Any], source: str = "pretrain config") -> PretrainConfig:
    """Validate a pretraining config dict, with the same messages as :func:`validate_config`."""
    return _validated(PretrainConfig, raw, source, "pretrain config")


def read_yaml(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with ``a.b=value`` overrides applied."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = read_yaml_file(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for item in overrides:
        apply_override(raw, item)
    return raw


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``train.lr=3e-5`` in a nested dict; the value is parsed as YAML."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{item}' must look like section.key=value, e.g. train.lr=3e-5")
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{item}': '{part}' is not a section")
        node = child
    node[parts[-1]] = parse_yaml(value, f"override '{item}'") if value.strip() else None


def validate_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config dict, turning pydantic's errors into messages that say what to fix."""
    return _validated(RunConfig, raw, source, "config")


def validate_deploy(raw: dict[str, Any], source: str = "deploy config") -> DeployConfig:
    """Validate the ``deploy`` part alone, with the same messages as :func:`validate_config`."""
    return _validated(DeployConfig, raw, source, "deploy config")


Section = TypeVar("Section", bound=BaseModel)


def _validated(model: type[Section], raw: dict[str, Any], source: str, what: str) -> Section:
    """``raw`` as ``model``; pydantic's errors as one message per problem, saying what to fix."""
    try:
        return model.model_validate(raw)
    except ConfigError as exc:  # a rule that raised fintune's own error
        raise ConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        lines = [_explain(err, raw, model) for err in exc.errors()]
        raise ConfigError(f"{source}: invalid {what}:\n  " + "\n  ".join(lines)) from None


def _explain(err: Any, raw: dict[str, Any], root: type[BaseModel] | None = None) -> str:
    # pydantic names the kind's config in the location of its errors (model.causal.prompt): the
    # user wrote model.prompt.
    loc = tuple(str(p) for i, p in enumerate(err["loc"]) if not (i == 1 and err["loc"][0] == "model"
                                                                 and str(p) in KIND_MODELS))
    dotted = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1], raw, root or RunConfig)
        near = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{'.'.join(loc[:-1] + (near[0],))}'?" if near else ""
        return f"unknown key '{dotted}'{hint} (valid keys here: {', '.join(valid)})"
    if err["type"] == "missing":
        return f"missing required key '{dotted}'"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{dotted}: {msg}" if loc else msg


def _fields_at(loc: tuple[str, ...], raw: dict[str, Any], root: type[BaseModel]) -> list[str]:
    """The field names of the model found by walking ``loc`` down from ``root``."""
    cls: Any = root
    node: Any = raw
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        if part == "strategy" and cls is RunConfig:
            name = node.get("name") if isinstance(node, dict) else None
            cls = STRATEGIES[name].Config if name in STRATEGIES else StrategyConfig
            continue
        if part == "model" and cls is RunConfig:  # the config of the kind it names
            kind = node.get("kind", "text") if isinstance(node, dict) else "text"
            cls = KIND_MODELS.get(kind)
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        cls = _model_in(field.annotation) if field else None
    return list(cls.model_fields) if cls else []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, defaults filled in, so a run can be reproduced."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
