"""mkdocs hooks: pages whose content is generated from the code and the result files.

A page holds a marker, an HTML comment the hook replaces at build time:

- ``<!-- fintune:results NAME -->``: every row of ``benchmarks/results/NAME.json``, so the
  numbers on a benchmark page come from the file the script wrote, never retyped;
- ``<!-- fintune:config-reference -->``: every config field (type, default, description),
  walked from the pydantic models, with each model kind's and each strategy's own section;
- ``<!-- fintune:cli-reference -->``: every command's usage and options, from the typer app;
- ``<!-- fintune:registries -->``: the registered tasks, model kinds and strategies;
- ``<!-- fintune:configs -->``: every YAML file under configs/ with its opening comment;
- ``<!-- fintune:readme Results -->``: a section of README.md (its body, links made relative
  to the docs), so the front page and the README cannot say different things.

An unknown marker or a missing result file fails the build (``mkdocs build --strict``).
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- fintune:([\w-]+)(?: ([\w ]+?))? -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker of the page with its generated markdown."""
    return MARKER.sub(lambda m: _render(m.group(1), m.group(2), page.file.src_path), markdown)


def _render(what: str, arg: str | None, where: str) -> str:
    makers = {"results": lambda: results_table(arg or ""), "config-reference": config_reference,
              "cli-reference": cli_reference, "registries": registries,
              "readme": lambda: readme_section(arg or ""), "configs": shipped_configs}
    if what not in makers:
        raise ValueError(f"{where}: unknown marker fintune:{what}; known: {', '.join(makers)}")
    return makers[what]()


# ---------------------------------------------------------------- benchmark results


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def results_table(name: str) -> str:
    """One row per system of ``benchmarks/results/NAME.json``, one column per scalar metric."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(rows, list):
        rows = {str(i): r for i, r in enumerate(rows)}
    scalar = {k: v for k, v in rows.items() if not isinstance(v, dict)}
    rows = {k: v for k, v in rows.items() if isinstance(v, dict)}
    columns: list[str] = []
    for row in rows.values():
        columns += [k for k, v in row.items() if k not in columns and not isinstance(v, (dict, list))]
    lines = [f"From `benchmarks/results/{name}.json` ({len(rows)} rows), as the script wrote it.", ""]
    lines += ["| row | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, row in rows.items():
        lines.append(f"| {key} | " + " | ".join(_cell(row[c]) if c in row else "" for c in columns) + " |")
    lines += [f"\n{k}: {_cell(v)}" for k, v in scalar.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- config reference


def _type_name(annotation: Any) -> str:
    """A field's type as a reader writes it in YAML terms."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = dict.fromkeys(_type_name(a) for a in typing.get_args(annotation))  # a union of sections is one
        return " \\| ".join(names)
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        key, value = typing.get_args(annotation) or (Any, Any)
        return f"map of {_type_name(key)} to {_type_name(value)}"
    if annotation is type(None):
        return "null"
    if _models_in(annotation):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _models_in(annotation: Any) -> list[type]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models_in(a)]


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return ""
    if hasattr(value, "model_dump"):
        return "(section)"
    return f"`{json.dumps(value, default=str, ensure_ascii=False)}`"


def _section(path: str, model: type, out: list[str], skip: tuple[str, ...] = ()) -> None:
    """One table for ``model`` at ``path``, then its sub-sections (not those of ``skip``)."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    out += [f"### `{path}`" if path else "### top level", "", doc, "",
            "| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, type]] = []
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        if name not in skip:
            nested += [(f"{path}.{name}" if path else name, m) for m in _models_in(field.annotation)]
    out.append("")
    for sub_path, sub in nested:
        _section(sub_path, sub, out)


def config_reference() -> str:
    """Every field of the run config; the model section once per kind, strategy once per name."""
    from fintune.config.model_kinds import KIND_MODELS
    from fintune.config.schema import RunConfig
    from fintune.strategies import STRATEGIES

    out: list[str] = ["## The run config (`fintune train CONFIG.yaml`)", ""]
    _section("", RunConfig, out, skip=("model", "strategy"))
    out += ["## `model`, by `model.kind`", ""]
    for kind, cls in KIND_MODELS.items():
        _section(f"model (kind: {kind})", cls, out)
    out += ["## `strategy`, by `strategy.name`", ""]
    for name, strategy in STRATEGIES.items():
        _section(f"strategy (name: {name})", strategy.Config, out)
    return "\n".join(out)


# ---------------------------------------------------------------- CLI reference


def cli_reference() -> str:
    """Each command's help, usage and options, as `fintune COMMAND --help` prints them."""
    import typer.main

    from fintune.cli import app

    root = typer.main.get_command(app)
    out: list[str] = []

    # typer carries its own copy of click: its classes are told apart by what they have.
    def walk(command: Any, words: list[str]) -> None:
        if hasattr(command, "commands"):
            for name in sorted(command.commands):
                walk(command.commands[name], words + [name])
            return
        ctx = command.context_class(command, info_name=" ".join(words))
        usage = " ".join(command.collect_usage_pieces(ctx))
        out.extend([f"### `{' '.join(words)}`", "", (command.help or "").strip().split("\n\n")[0], "",
                    f"```\n{' '.join(words)} {usage}\n```", ""])
        rows = []
        for param in command.params:
            if param.name == "help":
                continue
            names = (", ".join(f"`{o}`" for o in (param.opts + param.secondary_opts))
                     if param.param_type_name == "option" else f"`{param.name.upper()}`")
            help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
            default = "" if param.required or param.default in (None, ()) else f"`{param.default}`"
            rows.append(f"| {names} | {help_text} | {default} |")
        if rows:
            out.extend(["| argument or option | help | default |", "|---|---|---|", *rows, ""])

    walk(root, ["fintune"])
    return "\n".join(out)


# ---------------------------------------------------------------- registries


def registries() -> str:
    """Tables of the registered tasks, model kinds and strategies, from their declarations."""
    from fintune.kinds import KINDS
    from fintune.strategies import STRATEGIES
    from fintune.tasks import TASKS

    out = ["### Tasks (`task`)", "", "| task | answer | selects checkpoints by | explained |", "|---|---|---|---|"]
    out += [f"| `{n}` | {t.answer} | {t.primary_metric[0]} ({t.primary_metric[1]}) | {'yes' if t.explained else 'no'} |"
            for n, t in TASKS.items()]
    out += ["", "### Model kinds (`model.kind`)", "", "| kind | reads | tasks | what it is |", "|---|---|---|---|"]
    out += [f"| `{n}` | {k.reads} | {', '.join(sorted(k.tasks))} | {k.summary} |" for n, k in KINDS.items()]
    out += ["", "### Strategies (`strategy.name`)", "", "| strategy | kinds | DP-SGD | what it trains |",
            "|---|---|---|---|"]
    for n, s in STRATEGIES.items():
        summary = (sys.modules[s.__module__].__doc__ or "").strip().split("\n")[0]  # one file per strategy
        out.append(f"| `{n}` | {', '.join(sorted(s.kinds))} | {'yes' if s.dp else 'no'} | {summary} |")
    return "\n".join(out) + "\n"


def readme_section(title: str) -> str:
    """The body of README.md's ``## title`` section, its links rewritten for docs/index.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if found is None:
        raise ValueError(f"README.md has no section '## {title}'")
    return re.sub(r"\]\(docs/", "](", found.group(1))  # docs/x.md -> x.md, from the docs root


def shipped_configs() -> str:
    """One row per YAML file under configs/: its path and what its opening comment says."""
    out = ["| config | what it is |", "|---|---|"]
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        comment = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            comment.append(line.lstrip("# ").strip())
        text = " ".join(comment).replace("|", "\\|")
        out.append(f"| `{path.relative_to(ROOT).as_posix()}` | {text} |")
    return "\n".join(out) + "\n"
