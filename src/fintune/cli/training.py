"""Commands that train: train, pretrain, label, tune, distill, walk-forward, quickstart, data check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fintune.cli.app import NoProgress, Overrides, app, data_app, user_errors
from fintune.engines import TrainRequest, engine_for
from fintune.errors import FintuneError, needs


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
          engine: Annotated[str, typer.Option(help="local (this machine; --nproc N for DDP under torchrun), "
                                              "torchrun or ray (Ray Train workers)")] = "local",
          workers: Annotated[int, typer.Option(help="--engine ray: training workers", min=1)] = 2,
          address: Annotated[str | None, typer.Option(help="--engine ray: a running cluster (auto, ray://...)")]
          = None,
          no_progress: NoProgress = False) -> None:
    """Fine-tune, evaluate and save a model as CONFIG says."""
    overrides = [*(overrides or []), *(["track.mlflow=true"] if track else [])]
    _run(engine, TrainRequest("train", config, overrides, resume=resume, overwrite=overwrite, force=force,
                              show_progress=not no_progress, nproc=nproc, workers=workers, address=address))


def _run(engine: str, request: TrainRequest) -> None:
    """Hand the request to the engine; a launcher's failed processes give their exit code."""
    code = engine_for(engine, request.command).train(request)
    if code:
        raise typer.Exit(code)


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
    _run("local", TrainRequest("pretrain", config, overrides or [], resume=resume, overwrite=overwrite, force=force,
                               show_progress=not no_progress, nproc=nproc))


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


@app.command()
@user_errors
def quickstart(which: Annotated[str, typer.Argument(help="text: fine-tune a language model on financial tweets; "
                                                        "tables: the credit demo")] = "text",
               output_dir: Annotated[str | None, typer.Option(help="default runs/demo (text), runs/quickstart "
                                                                   "(tables)")] = None,
               epochs: Annotated[int | None, typer.Option(help="text: 2 epochs; tables: the MLP member's budget, "
                                                              "60, early-stopped")] = None,
               overwrite: Annotated[bool, typer.Option(help="replace an existing run")] = True,
               no_progress: NoProgress = False) -> None:
    """The demos: `text` fine-tunes the default encoder on 6,000 financial tweets and ranks it beside
    TF-IDF + logistic regression and the majority class (about three minutes); `tables` is the credit
    demo (an ensemble against logistic regression and LightGBM, the HTML report)."""
    if which == "text":
        from fintune.workflows.demo import run_demo
        run_demo(output_dir or "runs/demo", epochs=epochs or 2, overwrite=overwrite, show_progress=not no_progress)
    elif which == "tables":
        from fintune.workflows.quickstart import run_quickstart
        run_quickstart(output_dir or "runs/quickstart", epochs=epochs or 60, overwrite=overwrite,
                       show_progress=not no_progress)
    else:
        raise FintuneError(f"fintune quickstart {which}: choose text (the default) or tables")


@app.command("walk-forward")
@user_errors
def walk_forward(config: Path, overrides: Overrides = None,
                 folds: Annotated[int, typer.Option(help="test blocks; fold K trains on every block before")] = 5,
                 overwrite: Annotated[bool, typer.Option(help="replace existing fold runs")] = False,
                 no_progress: NoProgress = False) -> None:
    """Walk-forward evaluation of a time-split CONFIG: one run per fold, mean and spread of test metrics."""
    from fintune.workflows.walkforward import walk_forward as run_walk_forward
    run_walk_forward(config, overrides or [], folds=folds, overwrite=overwrite, show_progress=not no_progress)


@app.command()
@user_errors
def tune(config: Path, overrides: Overrides = None,
         trials: Annotated[int | None, typer.Option(help="finished trials to reach (default tune.trials)")] = None,
         no_progress: NoProgress = False) -> None:
    """Hyperparameter search (Optuna) over the config's `tune.space`; resumable."""
    with needs("tune", "fintune tune"):
        from fintune.workflows.tune import tune as run_tune
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
    from fintune.workflows.distill import distill as run_distill
    run_distill(teacher, student, output_dir=output_dir, num_layers=student_layers,
                unlabeled=list(unlabeled) if unlabeled else None,
                temperature=temperature, alpha=alpha, overrides=overrides or [], overwrite=overwrite,
                resume=resume, show_progress=not no_progress)
