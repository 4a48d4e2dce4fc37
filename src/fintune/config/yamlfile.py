"""Reading YAML in bounded memory, with errors that name the file.

YAML aliases share one node among many places: ``a1: &a1 [*a0, *a0, ...]`` nested ten levels
is a 1 KB file whose value, once turned into text or copied, has billions of items. Every
YAML file fintune reads (run configs, a received run's config.yaml, deploy settings,
overrides) goes through :func:`parse_yaml`, which counts the nodes the document expands to
before building anything and refuses a document over :data:`MAX_NODES`, or one that contains
itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fintune.errors import ConfigError

# A run config has a few hundred nodes; a label map of 10,000 classes stays far below this.
MAX_NODES = 200_000


def _expanded_size(root: yaml.Node, source: str) -> int:
    """How many nodes ``root`` stands for with every alias expanded, computed once per node
    (aliases make the graph a DAG), so counting stays linear in the file's size."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Iterative post-order walk: a deep document must not exhaust Python's stack either.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise ConfigError(f"{source}: the YAML expands to more than {MAX_NODES:,} values through its "
                                  "aliases (&name / *name); write the values out or use fewer aliases")
            continue
        if key in open_nodes:
            raise ConfigError(f"{source}: a YAML alias refers to a value that contains it; remove the cycle")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, source: str = "config") -> Any:
    """The YAML document in ``text`` (None when empty), refused with a :class:`ConfigError`
    naming ``source`` when it is not valid YAML or expands beyond :data:`MAX_NODES` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path) -> Any:
    """The YAML document of a file, read as UTF-8; every error names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_yaml(text, str(path))
