"""Commands that judge a finished run: evaluate, fairness, explain, report, runs, track."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fintune.cli.app import Groups, app, user_errors
from fintune.errors import FintuneError


@app.command()
@user_errors
def runs(root: Annotated[Path, typer.Argument(help="folder holding run folders")] = Path("runs"),
         sort: Annotated[str | None, typer.Option(help="a column to sort by, e.g. test.roc_auc; -test.roc_auc "
                                                  "sorts high to low")] = None,
         filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value, e.g. model.kind=gbm "
                                                           "(repeatable)")] = None,
         output: Annotated[Path | None, typer.Option(help="also write the rows as CSV or JSON")] = None) -> None:
    """List and compare the runs under ROOT: settings that differ, final metrics, train time."""
    import pandas as pd

    from fintune.tracking import list_runs, print_runs, select_runs
    rows = select_runs(list_runs(root), filter_ or [], sort)
    print_runs(rows)
    if output:
        frame = pd.DataFrame(rows)
        frame.to_json(output, orient="records", indent=2) if output.suffix == ".json" else frame.to_csv(output, index=False)


@app.command()
@user_errors
def track(run: Path, uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default "
                                                              "sqlite:///<parent of RUN>/mlflow.db)")] = None,
          experiment: Annotated[str, typer.Option(help="MLflow experiment")] = "fintune",
          tensorboard: Annotated[bool, typer.Option(help="also write TensorBoard scalars")] = False,
          register: Annotated[str | None, typer.Option(help="register the model under this name in MLflow's "
                                                             "model registry (a new version)")] = None) -> None:
    """Log a finished run to MLflow after the fact (what `train --track` does at the end): params,
    curves, metrics, plots, the model as an MLflow pyfunc model, optionally registered."""
    from fintune.config import TrackConfig
    from fintune.tracking import log_run
    log_run(run, TrackConfig(mlflow=True, tracking_uri=uri, experiment=experiment, tensorboard=tensorboard,
                             register=register))


@app.command()
@user_errors
def evaluate(run: Path, data: Annotated[Path | None, typer.Option(help="labeled CSV/JSONL/Parquet file")] = None,
             output: Annotated[Path | None, typer.Option(help="report folder (default RUN/eval/NAME)")] = None,
             groups: Groups = None,
             privacy_audit: Annotated[bool, typer.Option(help="membership inference: training rows vs the "
                                                         "run's held-out rows")] = False,
             precision: Annotated[str, typer.Option(help="fp32 (as training evaluated), or auto/bf16: about twice "
                                                    "as fast for large models where bf16 is native")] = "fp32") -> None:
    """Score a finished run on labeled data: metrics JSON, plots and a Markdown report."""
    from fintune import api
    from fintune.trust import parse_groups
    if data is None and not privacy_audit:
        raise FintuneError("give --data FILE (labeled data to score), or --privacy-audit")
    if data is not None:
        if precision not in ("fp32", "auto", "bf16"):
            raise FintuneError(f"--precision {precision}: use fp32, auto or bf16")
        api.evaluate(run, data, output=output, groups=parse_groups(groups) if groups else None, precision=precision)
    if privacy_audit:
        from fintune.trust import privacy_audit as audit

        result = audit(run)
        api.console.print(f"membership inference (loss threshold, {result['rows_each']} training vs "
                          f"{result['rows_each']} {result['non_members']} rows): ROC-AUC {result['auc']:.3f}, "
                          f"advantage {result['advantage']:.3f} (0.5 and 0: nothing to see); "
                          f"written to {run / 'privacy_audit.json'}")


@app.command()
@user_errors
def fairness(run: Path, groups: Annotated[str, typer.Option(help="COL[,COL], numbers binned: age:25,35,50")],
             data: Annotated[Path | None, typer.Option(help="labeled file (default: the run's test split)")] = None,
             mitigate: Annotated[str | None, typer.Option(
                 help="demographic_parity | equalized_odds | true_positive_rate_parity: fairlearn's "
                      "ThresholdOptimizer fitted on validation, saved with the model")] = None,
             mitigate_on: Annotated[str | None, typer.Option(help="the group column to mitigate (default: the first)")] = None,
             output: Annotated[Path | None, typer.Option(help="JSON file (default RUN/fairness.json)")] = None) -> None:
    """Fairness across groups: selection rate, accuracy, TPR, FPR, parity and equalized-odds gaps."""
    import json

    from fintune import api
    from fintune.trust import fairness as run_fairness, parse_groups, print_fairness
    result = run_fairness(run, parse_groups(groups), data=data, mitigate=mitigate, mitigate_on=mitigate_on)
    print_fairness(result["before"], api.console)
    if "after" in result:
        print_fairness(result["after"], api.console, title=f"after {mitigate} (fairlearn ThresholdOptimizer)")
    for line in result.get("warnings", []):
        api.console.print(f"[bold yellow]warning:[/] {line}", soft_wrap=True)
    out = output or run / "fairness.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    api.console.print(f"fairness written to [bold]{out}[/]")


@app.command()
@user_errors
def explain(run: Path, text: Annotated[str | None, typer.Argument(help="a text to explain (text models)")] = None,
            row: Annotated[int | None, typer.Option(help="row of the run's test split (table models)")] = None,
            top: int = 10,
            html: Annotated[Path | None, typer.Option(help="also write the highlighted text as HTML")] = None) -> None:
    """Why the model predicts what it does for one text (Integrated Gradients) or one row (occlusion)."""
    from rich.table import Table

    from fintune import api, trust
    if text is None and row is None:
        raise FintuneError("say what to explain: a TEXT (fintune explain RUN \"text\") or --row N (a row of the "
                           "run's test split, or its validation split when it has no test split)")
    if text is not None and row is not None:
        raise FintuneError("give a TEXT or --row N, not both")
    if row is not None:
        split = trust.held_out_split(run)
        examples, _ = api.load_split(run, split)
        note = "" if split == "test" else " (the run has no test split)"
        api.console.print(f"row {row} of the run's {split} split{note}: {examples.texts[row] if 0 <= row < len(examples) else '?'}",
                          soft_wrap=True, highlight=False)
    exp = trust.explain_text(run, text) if text is not None else trust.explain_rows(run, [row])[0]
    if exp.windows:  # a long document: which windows mattered, then the words of the one that mattered most
        windows = Table(title=f"{len(exp.windows)} windows: the drop in P({exp.label}) without each")
        for name in ("window", "from token", "pooling weight", "drop"):
            windows.add_column(name, justify="right")
        for w in sorted(exp.windows, key=lambda w: -w["drop"])[:top]:
            windows.add_row(str(int(w["window"]) + 1), str(int(w["start"])), f"{w['weight']:.3f}", f"{w['drop']:+.4f}")
        api.console.print(windows)
    table = Table(title=f"predicted {exp.label} ({exp.probability:.3f})")
    table.add_column("column = value" if exp.method == "occlusion" else "word")  # a text's row is explained by words
    table.add_column("attribution", justify="right")
    for part, value in exp.top(top):
        table.add_row(part, f"{value:+.4f}")
    api.console.print(table)
    if html:
        html.write_text(f"<!doctype html><meta charset=utf-8><p>{exp.to_html()}</p>", encoding="utf-8")


@app.command()
@user_errors
def report(run: Path, groups: Groups = None,
           output: Annotated[Path | None, typer.Option(help="HTML file (default RUN/report.html)")] = None) -> None:
    """One self-contained HTML report: metrics, calibration, fairness, robustness, explanations."""
    from fintune.report import write_report
    from fintune.trust import parse_groups
    write_report(run, groups=parse_groups(groups) if groups else None, output=output)
