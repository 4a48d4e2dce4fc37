"""Look up one entity in a built graph: its neighbours, its sentiment over time, a picture."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from rich.console import Console
from rich.table import Table

from fintune.errors import FintuneError
from fintune.graph.files import GRAPHML
from fintune.evaluation.fonts import INSTALL_HINT, cjk_family, has_cjk
from fintune.graph.canonical import canonical_key


@dataclass(frozen=True)
class Neighbour:
    """An entity mentioned together with the one shown."""

    key: str
    label: str
    type: str
    weight: int  # texts that mention both
    sentiment: float | None  # the neighbour's own mean sentiment, when the graph has one


@dataclass(frozen=True)
class TrendPoint:
    """The entity's mean sentiment in one period."""

    period: str
    sentiment: float
    documents: int  # texts in the period that mention the entity: the mean is over these
    mentions: int


@dataclass
class Shown:
    """What :func:`show` printed and drew."""

    key: str
    label: str
    type: str
    mentions: int
    documents: int
    degree: int  # all neighbours, not only the ``top`` shown
    sentiment: float | None
    neighbours: list[Neighbour] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)
    png: Path | None = None


def load_graph(graph_dir: str | Path) -> nx.Graph:
    """The graph written by ``fintune graph build``: its folder, or its ``graph.graphml``."""
    path = Path(graph_dir)
    file = path if path.suffix == ".graphml" else path / GRAPHML
    if not file.is_file():
        raise FintuneError(f"no graph at {file.resolve()}; build one with `fintune graph build`")
    try:
        return nx.read_graphml(file)
    except Exception as exc:  # malformed XML and GraphML errors alike: the file is not usable
        raise FintuneError(f"cannot read {file}: {exc}") from exc


def find_node(graph: nx.Graph, name: str) -> str:
    """The node id of ``name``, looked up by its canonical key (so "DEUTSCHE BANK AG" finds
    "Deutsche Bank").

    Raises:
        FintuneError: no such entity; the message lists close matches among the labels.
    """
    key = canonical_key(name)
    if key and key in graph:
        return key
    suggestions = suggest(graph, name)
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    looked = f" (looked up as '{key}')" if key and key != name else ""
    raise FintuneError(f"no entity '{name}' in the graph{looked}.{hint}")


def suggest(graph: nx.Graph, name: str, n: int = 5) -> list[str]:
    """Labels of nodes whose name contains ``name`` or is spelled close to it, most mentioned first."""
    key = canonical_key(name) or name.casefold()
    by_key = {k: attrs.get("label", k) for k, attrs in graph.nodes(data=True)}
    ranked = sorted(by_key, key=lambda k: -int(graph.nodes[k].get("mentions", 0)))
    containing = [k for k in ranked if key in k or (len(k) > 2 and k in key)]
    close = difflib.get_close_matches(key, list(by_key), n=n, cutoff=0.6)
    picked = list(dict.fromkeys(containing[:n] + close))[:n]
    return [by_key[k] for k in picked]


def neighbours(graph: nx.Graph, key: str, top: int | None = None) -> list[Neighbour]:
    """The node's neighbours, heaviest edge first (ties: most mentioned, then by name)."""
    found = [Neighbour(other, attrs.get("label", other), attrs.get("type", ""), int(graph.edges[key, other]["weight"]),
                       _float(attrs.get("sentiment")) if "sentiment_n" in attrs else None)
             for other, attrs in ((o, graph.nodes[o]) for o in graph.neighbors(key))]
    found.sort(key=lambda nb: (-nb.weight, -int(graph.nodes[nb.key].get("mentions", 0)), nb.label.casefold()))
    return found if top is None else found[:top]


def trend(graph: nx.Graph, key: str) -> list[TrendPoint]:
    """The node's sentiment per period, oldest first; empty without sentiment and dates.

    It is the node's ``trend`` attribute: the same rows as ``sentiment.csv`` for this entity.
    """
    raw = graph.nodes[key].get("trend")
    if not raw:
        return []
    return [TrendPoint(str(p["period"]), float(p["sentiment"]), int(p["documents"]), int(p["mentions"]))
            for p in json.loads(raw)]


def default_png(graph_dir: str | Path, key: str) -> Path:
    """``GRAPH/<key with spaces as _>.png``: canonical keys hold no path separators."""
    path = Path(graph_dir)
    folder = path.parent if path.suffix == ".graphml" else path
    return folder / f"{key.replace(' ', '_')}.png"


def show(graph_dir: str | Path, name: str, top: int = 15, png: str | Path | None = None, draw: bool = True,
         console: Console | None = None) -> Shown:
    """Print an entity's neighbours and sentiment trend, and draw its neighbourhood.

    Args:
        graph_dir: the folder written by ``fintune graph build``.
        name: the entity, in any spelling with the same canonical key.
        top: how many neighbours to print and draw (the heaviest edges).
        png: where to draw (default ``GRAPH/<key>.png``).
        draw: False to print only.
        console: where to print (default: stdout).

    Raises:
        FintuneError: no graph there, or no such entity (with close matches).
    """
    if top < 1:
        raise FintuneError(f"--top must be at least 1, got {top}")
    console = console or Console()
    graph = load_graph(graph_dir)
    key = find_node(graph, name)
    attrs = graph.nodes[key]
    shown = Shown(key=key, label=attrs.get("label", key), type=attrs.get("type", ""),
                  mentions=int(attrs.get("mentions", 0)), documents=int(attrs.get("documents", 0)),
                  degree=graph.degree(key),
                  sentiment=_float(attrs.get("sentiment")) if "sentiment_n" in attrs else None,
                  neighbours=neighbours(graph, key, top), trend=trend(graph, key))
    if draw:
        shown.png = draw_neighbourhood(graph, key, shown.neighbours, Path(png) if png else default_png(graph_dir, key))
    print_shown(shown, console)
    return shown


def print_shown(shown: Shown, console: Console) -> None:
    """The entity line, the neighbours table and the trend table."""
    mood = f", sentiment {shown.sentiment:+.3f}" if shown.sentiment is not None else ""
    console.print(f"[bold]{shown.label}[/] ({shown.type}): {shown.mentions} mentions in {shown.documents} texts, "
                  f"{shown.degree} neighbours{mood}")
    if shown.neighbours:
        with_sentiment = any(nb.sentiment is not None for nb in shown.neighbours)
        table = Table(title=f"neighbours ({len(shown.neighbours)} of {shown.degree}, by texts in common)")
        for column in ("entity", "type", "weight") + (("sentiment",) if with_sentiment else ()):
            table.add_column(column, justify="left" if column in ("entity", "type") else "right")
        for nb in shown.neighbours:
            row = [nb.label, nb.type, str(nb.weight)]
            if with_sentiment:
                row.append("" if nb.sentiment is None else f"{nb.sentiment:+.3f}")
            table.add_row(*row)
        console.print(table)
    if shown.trend:
        table = Table(title="sentiment by period")
        for column in ("period", "sentiment", "texts", "mentions"):
            table.add_column(column, justify="left" if column == "period" else "right")
        for point in shown.trend:
            table.add_row(point.period, f"{point.sentiment:+.3f}", str(point.documents), str(point.mentions))
        console.print(table)
    if shown.png is not None:
        console.print(f"neighbourhood drawn to [bold]{shown.png}[/]")


def draw_neighbourhood(graph: nx.Graph, key: str, shown: list[Neighbour], png: Path) -> Path:
    """Draw the entity and the given neighbours (and the edges among them) to a PNG.

    Edge width grows with weight; with sentiment, nodes are coloured red (-1), grey (0),
    green (+1); node size grows with mentions.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    sub = graph.subgraph([key] + [nb.key for nb in shown])
    pos = nx.spring_layout(sub, seed=0, weight="weight", pos={key: (0.0, 0.0)}, fixed=[key]) \
        if len(sub) > 1 else {key: (0.0, 0.0)}
    heaviest = max((w for _, _, w in sub.edges(data="weight")), default=1)
    widths = [0.5 + 5.0 * w / heaviest for _, _, w in sub.edges(data="weight")]
    sizes = [300 + 120 * math.sqrt(int(sub.nodes[n].get("mentions", 1))) for n in sub]
    with_sentiment = all("sentiment_n" in sub.nodes[n] for n in sub)
    cmap = LinearSegmentedColormap.from_list("sentiment", ["#c0392b", "#bdbdbd", "#27ae60"])

    fig, ax = plt.subplots(figsize=(9, 7))
    try:
        nx.draw_networkx_edges(sub, pos, ax=ax, width=widths, edge_color="#9e9e9e", alpha=0.7)
        if with_sentiment:
            colours = [_float(sub.nodes[n].get("sentiment")) or 0.0 for n in sub]
            drawn = nx.draw_networkx_nodes(sub, pos, ax=ax, node_size=sizes, node_color=colours, cmap=cmap,
                                           vmin=-1.0, vmax=1.0, edgecolors=["black" if n == key else "white"
                                                                            for n in sub])
            fig.colorbar(drawn, ax=ax, shrink=0.6, label="sentiment")
        else:
            nx.draw_networkx_nodes(sub, pos, ax=ax, node_size=sizes,
                                   node_color=["#f39c12" if n == key else "#85c1e9" for n in sub])
        labels = {n: sub.nodes[n].get("label", n) for n in sub}
        family = label_font(list(labels.values()) + [d.get("relation", "") for *_, d in sub.edges(data=True)])
        nx.draw_networkx_labels(sub, pos, ax=ax, labels=labels, font_size=9, font_family=family)
        relations = {(a, b): d["relation"].split("-[")[1].split("]")[0] for a, b, d in sub.edges(data=True)
                     if "relation" in d}
        if relations:  # the commonest relation predicted between the two, by a relation run
            nx.draw_networkx_edge_labels(sub, pos, ax=ax, edge_labels=relations, font_size=7, font_family=family)
        ax.set_title(f"{graph.nodes[key].get('label', key)}: {len(shown)} of {graph.degree(key)} neighbours "
                     "(edge width: texts in common)", fontfamily=family)
        ax.axis("off")
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return png


def label_font(labels: list[str]) -> str:
    """matplotlib's default family, or an installed CJK one where a label needs it (a warning
    on stderr when there is none)."""
    if not has_cjk(labels):
        return "sans-serif"
    family = cjk_family()
    if family is None:
        import warnings

        warnings.warn(INSTALL_HINT, stacklevel=3)
        return "sans-serif"
    return family


def _float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
