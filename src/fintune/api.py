"""The Python API: train, evaluate, predict, check data, export and label. The CLI's commands
for these call exactly these functions; its other commands call the workflows
(:mod:`fintune.workflows`), the engines (:mod:`fintune.engines`) or the module that owns the
work (serving, reporting, monitoring), each through one function.

A thin facade: the recipes (:mod:`fintune.recipes`) train, the run folder
(:mod:`fintune.rundir`) holds a run's files, the predictors (:mod:`fintune.predictors`)
predict, :mod:`fintune.evaluation` scores, :mod:`fintune.deploy` exports and serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import Progress
from transformers import set_seed

from fintune.config import (
    PretrainConfig, RunConfig, apply_override, load_config, load_pretrain_config, validate_config, validate_pretrain,
)
from fintune.config.labeling import LabelConfig
from fintune.config.loading import RUN_PATHS, load_label_config, read_yaml, resolve_paths
from fintune.console import console
from fintune.data import Examples, PreparedData, prepare_data, print_report
from fintune.data.label_issues import ISSUES_FILE, find_label_issues
from fintune.data.columns import load_table
from fintune.data.frames import table_path
from fintune.data.stream import row_count, stream_table, streamable
from fintune.deploy import deploy_config
from fintune.deploy.export import export_hf, export_onnx
from fintune.errors import FintuneError
from fintune.evaluation.files import OUTPUTS as EVALUATION_OUTPUTS
from fintune.evaluation.checks import warnings_for
from fintune.evaluation.files import evaluate_file
from fintune.files import atomic_file, atomic_outputs, write_text
from fintune.labeling import LabelResult
from fintune.models.backbones import load_tokenizer
from fintune.models.metadata import DistillMeta
from fintune.models.predictor import register_fit
from fintune.predictors import FintuneModel
from fintune.recipes import TrainOptions, recipe_for
from fintune.recipes.sentence import token_counter
from fintune.rundir import DATA_CHECK, METRICS, RunFolder, RunResult, load_split, read_metrics
from fintune.tagging.data import prepare_tagged, print_tagging_report
from fintune.training import loop
from fintune.tracking import log_run
from fintune.trust import fairness, print_fairness
from fintune.tasks import task_of

SHIFT_METRICS = ("accuracy", "weighted_f1", "macro_f1", "micro_f1", "samples_f1", "roc_auc", "pr_auc", "mse", "mae")


def load_run_config(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A validated config from a YAML path or a config object, with ``a.b=value`` overrides."""
    if isinstance(config, RunConfig):
        if overrides:
            raw = config.model_dump(mode="json")
            for item in overrides:
                apply_override(raw, item)
            return validate_config(raw)
        return config
    return load_config(config, overrides)


def data_check(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (),
               output: str | Path | None = None, label_issues: bool = False, folds: int = 5) -> dict[str, Any]:
    """Load, clean and split the data as training would; print and write the quality report.

    ``label_issues`` also lists the training rows whose labels look wrong (cleanlab on
    ``folds`` out-of-fold predictions of a quick model) in ``label_issues.csv`` beside the report.
    """
    cfg = load_run_config(config, overrides)
    out = Path(output) if output else Path(cfg.output_dir) / DATA_CHECK
    if task_of(cfg.task).answer == "tags":
        report = prepare_tagged(cfg.data, cfg.seed).report
        print_tagging_report(report, console)
    else:
        data = prepare_data(cfg.data, cfg.task, cfg.seed, token_counter(load_tokenizer(cfg.model), cfg.model.max_length,
                                                                  cfg.model.backbone))
        report = data.report
        print_report(report, console)
        if cfg.data.files is not None:
            report["files"] = _files_report(cfg)
        if label_issues:
            report["label_issues_found"] = _write_label_issues(data, cfg, folds, out.with_name(ISSUES_FILE))
    write_text(out, json.dumps(report, indent=2), "data report")
    console.print(f"data report written to [bold]{out}[/]")
    return report


def _files_report(cfg: RunConfig) -> dict[str, Any]:
    """How data.files read each split (cached readings): confidence, low-confidence files, errors."""
    from fintune.data.ingest import readings_of
    from fintune.data.ingest.report import files_report, print_files_report

    paths = {"train": cfg.data.train, "validation": cfg.data.validation, "test": cfg.data.test}
    report = files_report(readings_of(paths, cfg.data), cfg.data)
    print_files_report(report, console)
    return report


def _write_label_issues(data: PreparedData, cfg: RunConfig, folds: int, path: Path) -> dict[str, Any]:
    """Find, print and write the training rows whose labels look wrong."""
    if not task_of(cfg.task).scores_classes or data.label_names is None:
        raise FintuneError(f"--label-issues checks classification labels; this is a {cfg.task} task")
    issues = find_label_issues(data.train, data.label_names, folds, cfg.seed, text=cfg.data.text_column is not None)
    write_text(path, issues.table.drop(columns="position").to_csv(index=False), "label issues")
    summary = issues.summary()
    console.print(f"[bold]{summary['found']:,}[/] of {summary['checked']:,} training rows look mislabeled "
                  f"(out-of-fold accuracy of the quick model {summary['quick_model_accuracy']:.3f}); worst first "
                  f"in [bold]{path}[/]")
    for row in issues.table.head(5).itertuples():
        console.print(f"  row {row.row}: given {row.given_label}, suggested {row.suggested_label}: {row.text[:90]}",
                      markup=False, highlight=False)
    console.print("train without them: data.clean.drop_label_issues: true")
    return {**summary, "file": str(path)}


def train(config: RunConfig | str | Path, overrides: list[str] | tuple[str, ...] = (), *,
          resume: bool = False, overwrite: bool = False, force: bool = False, show_progress: bool = True,
          on_evaluate: Callable[[int, dict[str, Any]], None] | None = None,
          objective_for: Callable[[Examples], tuple[Examples, loop.Objective]] | None = None,
          distilled: DistillMeta | None = None) -> RunResult:
    """Fine-tune, evaluate and save a servable model in ``output_dir``.

    Data and backbone are validated before anything is written, so a bad input leaves no
    half-made run directory behind. fintune deletes only what it wrote: ``overwrite``
    replaces a fintune run (trained beside it and swapped in when finished, so the old model
    survives a crash) and refuses any other folder. One process at a time trains a run
    (a lock beside the folder). ``resume`` refuses a config that would train differently
    unless ``force``. ``objective_for`` lets distillation swap the training examples and
    loss; ``on_evaluate`` sees each validation result.
    """
    cfg = load_run_config(config, overrides)
    run = RunFolder(Path(cfg.output_dir))
    if distilled is not None:
        run.origin = {"distilled_from": str(Path(distilled.teacher).absolute())}
    teacher = run.recorded_origin().get("distilled_from") if resume else None
    if teacher and distilled is None:
        raise FintuneError(f"{run.final} is a distillation from the teacher {teacher}: resume it with "
                           f"fintune distill --teacher {teacher} --student ... --output-dir {run.final} --resume "
                           "(the same arguments it started with); training it alone would drop the teacher")
    with run.opened(cfg, resume=resume, overwrite=overwrite, force=force) as finished:
        if finished is not None:
            return finished
        set_seed(cfg.seed)
        options = TrainOptions(resume=resume, overwrite=overwrite, show_progress=show_progress,
                               on_evaluate=on_evaluate, objective_for=objective_for, distilled=distilled)
        result = recipe_for(cfg)(cfg, run, options)
        if result.model is None:
            return RunResult(run.final, result.metrics)
        finished_run = run.finish(cfg, result.model, result.metrics, result.training, result.report)
    if cfg.track.mlflow or cfg.track.tensorboard:
        try:
            log_run(finished_run.run_dir, cfg.track)
        except FintuneError as exc:  # the model is saved: tracking failing must not read as training failing
            console.print(f"[bold yellow]warning:[/] the model is saved in {finished_run.run_dir}, but tracking "
                          f"failed: {exc}. Log it later with: fintune track {finished_run.run_dir}", soft_wrap=True)
    return finished_run


def fit(table: Any, /, *, validation: Any = None, test: Any = None, config: RunConfig | dict[str, Any] | str | Path | None = None,
        task: str | None = None, text_column: str | None = None, label_column: str | None = None,
        output_dir: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), overwrite: bool = False,
        resume: bool = False, show_progress: bool = True, **sections: Any) -> FintuneModel:
    """Train from a notebook: :func:`train` with the data given as DataFrames, Hugging Face
    ``Dataset``s or paths, and the trained model returned (``model.run_dir``, ``model.metrics``).
    ``table`` is the training data (``data.train``).

    ``config`` (a YAML path, a dict or a :class:`RunConfig`) gives the rest; ``sections``
    (``model={...}``, ``train={...}``, ``data={...}``...) update its sections key by key
    (``seed=7`` sets a top-level value), and
    ``overrides`` are ``a.b=value`` strings as on the command line. In-memory tables are
    written once to ``$FINTUNE_HOME/frames`` (named by their content), so the run's
    ``config.yaml`` names real files and ``resume`` works.
    """
    if isinstance(config, RunConfig):
        raw: dict[str, Any] = config.model_dump(mode="json")
    elif isinstance(config, (str, Path)):
        raw = resolve_paths(read_yaml(config), Path(config).parent, RUN_PATHS)
    else:
        raw = dict(config or {})
    for name, section in sections.items():  # a section's dict updates it; a value (seed=7) replaces
        raw[name] = {**(raw.get(name) or {}), **section} if isinstance(section, dict) else section
    data = dict(raw.get("data") or {})
    for key, value in (("train", table), ("validation", validation), ("test", test)):
        if value is not None:
            data[key] = table_path(value, f"fit({key}=...)")
    for key, value in (("text_column", text_column), ("label_column", label_column)):
        if value is not None:
            data[key] = value
    raw["data"] = data
    if task is not None:
        raw["task"] = task
    if output_dir is not None:
        raw["output_dir"] = str(output_dir)
    for item in overrides:
        apply_override(raw, item)
    result = train(validate_config(raw, source="fintune.fit"), resume=resume, overwrite=overwrite,
                   show_progress=show_progress)
    model = FintuneModel.load(result.run_dir)
    model.run_dir, model.metrics = result.run_dir, result.metrics
    return model


register_fit(fit)


def label(config: LabelConfig | str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LabelResult:
    """Weak labels (``fintune label``): labeling functions vote on unlabeled texts, Snorkel's
    label model (or a majority vote) combines them into a labeled file with a confidence column."""
    from fintune.labeling import label as run_labeling

    cfg = config if isinstance(config, LabelConfig) else load_label_config(config, overrides)
    return run_labeling(cfg)


def pretrain(config: PretrainConfig | dict[str, Any] | str | Path, overrides: list[str] | tuple[str, ...] = (), *,
             resume: bool = False, overwrite: bool = False, force: bool = False,
             show_progress: bool = True) -> RunResult | None:
    """Continue pretraining a backbone on unlabeled text (``fintune pretrain``); the run's
    ``model/`` folder is then a ``model.backbone``. Same run-folder rules as :func:`train`."""
    from fintune.pretrain import pretrain as run_pretraining

    if isinstance(config, (str, Path)):
        cfg = load_pretrain_config(config, overrides)
    else:
        raw = config.model_dump(mode="json") if isinstance(config, PretrainConfig) else dict(config)
        for item in overrides:
            apply_override(raw, item)
        cfg = validate_pretrain(raw)
    return run_pretraining(cfg, resume=resume, overwrite=overwrite, force=force, show_progress=show_progress)


def evaluate(run: str | Path, data: str | Path, *, output: str | Path | None = None,
             batch_size: int = 64, groups: list[str] | None = None, precision: str = "fp32") -> dict[str, Any]:
    """Score a finished run on a labeled file; writes metrics, plots and a Markdown report.

    With ``groups`` (column names, ``age:25,35,50`` for bins) the metrics also hold a
    ``fairness`` table per group column, written to ``fairness.json`` as well. ``precision``:
    fp32 (what training's evaluation used), or auto / bf16 for about twice the speed of a
    large model on hardware with native bf16.
    """
    model = FintuneModel.load(run, precision=precision)
    if groups and not model.has_scores:
        raise FintuneError(f"--groups (fairness) compares decisions made from class probabilities; a {model.task} "
                           "run has none")
    out_dir = Path(output) if output else Path(run) / "eval" / Path(str(data)).stem
    # Written beside and moved in at the end, metrics.json last: a killed evaluation leaves
    # the last complete one (or nothing), never a half-written report.
    with atomic_outputs(out_dir, "metrics.json", "evaluation folder", stale=EVALUATION_OUTPUTS) as tmp:
        metrics = evaluate_file(model, str(data), tmp, batch_size)
        _shift_and_fairness(model, run, data, groups, metrics, tmp)
        # The training summary's checks (one class predicted, no better than the majority,
        # too few rows), on this file too: kept in its metrics.json for the report.
        metrics["warnings"] = warnings_for({out_dir.name: metrics}, [out_dir.name])
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
    for line in metrics["warnings"]:
        console.print(f"[bold yellow]warning:[/] {line}", soft_wrap=True)
    console.print(f"evaluation written to [bold]{out_dir}[/]")
    return metrics


def _shift_and_fairness(model: FintuneModel, run: str | Path, data: str | Path, groups: list[str] | None,
                        metrics: dict[str, Any], out_dir: Path) -> None:
    """The gap to the run's own held-out metrics, and the fairness table when asked."""
    if model.has_scores and (Path(run) / METRICS).exists():
        # Distribution shift: the same metrics on the run's own held-out data, and the gap.
        held = read_metrics(run)
        held = held.get("test") or held.get("validation") or {}
        metrics["shift_vs_run"] = {k: metrics[k] - held[k] for k in SHIFT_METRICS
                                   if isinstance(metrics.get(k), float) and isinstance(held.get(k), float)}
        for name, gap in metrics["shift_vs_run"].items():
            console.print(f"{name}: {metrics[name]:.4f} ({gap:+.4f} against the run's own held-out split)")
    if groups:
        metrics["fairness"] = fairness(run, groups, data=data, model=model)["before"]
        (out_dir / "fairness.json").write_text(json.dumps(metrics["fairness"], indent=2), encoding="utf-8")
        print_fairness(metrics["fairness"], console)


def _write_csv(frame: pd.DataFrame, path: Path, first: bool) -> None:
    # A CSV cell holds a list (a tagger's entities) as JSON text.
    for column in frame.columns:
        if len(frame) and isinstance(frame[column].iloc[0], list):
            frame[column] = [json.dumps(v) for v in frame[column]]
    frame.to_csv(path, mode="w" if first else "a", header=first, index=False)


def _write_jsonl(frame: pd.DataFrame, path: Path, first: bool) -> None:
    frame.to_json(path, orient="records", lines=True, mode="w" if first else "a", force_ascii=False)


class _ParquetWriter:
    """Each chunk one row group of a single Parquet file; later chunks take the first one's schema."""

    def __init__(self) -> None:
        self.writer: Any = None

    def __call__(self, frame: pd.DataFrame, path: Path, first: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(path, table.schema)
        else:  # a column that is all missing in one chunk must not change its type
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# Output writers by suffix: each call makes one for one output file.
WRITERS: dict[str, Callable[[], Callable[[pd.DataFrame, Path, bool], None]]] = {
    ".csv": lambda: _write_csv, ".jsonl": lambda: _write_jsonl, ".parquet": _ParquetWriter,
}


def predict(run: str | Path, input: str | Path, output: str | Path, *, batch_size: int = 64,
            chunk_rows: int = 2048, show_progress: bool = True, truncated_column: bool = False) -> Path:
    """Append the model's columns to every row of a CSV/JSONL/Parquet file: the predicted label
    and class probabilities (regression: the value; generation: the answer; a tagger: the
    entities with character offsets). The input is streamed ``chunk_rows`` at a time, so
    memory stays flat as the file grows. Rows longer than the model reads are counted and
    warned about; ``truncated_column`` adds a ``truncated`` column marking them."""
    output = Path(output)
    if output.suffix.lower() not in WRITERS:
        raise FintuneError(f"output {output}: use a .csv, .jsonl or .parquet file name")
    writer = WRITERS[output.suffix.lower()]()
    model = FintuneModel.load(run)
    cfg = model.data_config.model_copy(update={"format": "auto"})
    source = str(input)
    # Chunks go to a temporary file renamed at the end: a killed run or a bad row leaves no
    # output that looks complete. CSV, JSONL and Parquet are read a chunk at a time, so memory
    # does not grow with the file; other inputs (and data.windows, which turns a price table
    # into one row per complete window) are read whole first.
    streaming = streamable(source, cfg)
    if streaming:
        chunks, total = stream_table(source, cfg, chunk_rows), row_count(source, cfg)
    else:
        frame = load_table(source, cfg)
        rows = model.rows_for_prediction(frame, source)  # every row checked before anything is written
        chunks, total = _chunks_of(frame, chunk_rows), len(frame)
    written, cut = 0, 0
    with atomic_file(output, "output") as partial, Progress(console=console, disable=not show_progress) as progress:
        bar = progress.add_task("predict", total=total)
        for chunk in chunks:
            if streaming:  # this chunk's rows, checked before its predictions are written
                rows, offset = model.rows_for_prediction(chunk, source, int(chunk.index[0])), 0
            else:
                offset = written
            columns = model.predict_columns(rows, offset, offset + len(chunk), chunk.copy(), batch_size,
                                            on_batch=lambda n: progress.advance(bar, n))
            if cfg.files is not None and "entities" in columns:  # where each entity sits on its page
                from fintune.data.ingest import DIGEST_COLUMN, placed_entities

                columns["entities"] = placed_entities(columns["entities"], list(chunk[cfg.files.column]),
                                                      list(chunk[DIGEST_COLUMN]), cfg.files)
            out = chunk.copy()
            for name, values in columns.items():
                out[name] = values
            flags = model.truncated_rows(rows, offset, offset + len(chunk))
            if flags is not None:
                cut += int(flags.sum())
                if truncated_column:
                    out["truncated"] = flags
            writer(out, partial, written == 0)
            written += len(chunk)
        getattr(writer, "close", lambda: None)()  # Parquet's footer, before the file takes its name
    if cut:
        console.print(f"[bold yellow]warning:[/] {cut:,} of {written:,} rows are longer than the model reads "
                      f"(model.max_length {model.max_length} tokens) and were scored on their beginning only"
                      + ("" if truncated_column else "; --truncated-column marks them"), soft_wrap=True)
    console.print(f"{written} predictions written to [bold]{output}[/]")
    return output


def _chunks_of(frame: pd.DataFrame, rows: int) -> Any:
    return (frame.iloc[start:start + rows] for start in range(0, len(frame), rows))


def export(run: str | Path, *, format: str = "hf", quantize: str | None = None, merge: bool = True,
           output: str | Path | None = None, force: bool = False, data: str | Path | None = None,
           config: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
           fold_temperature: bool = True) -> Path:
    """Write the run's model for production.

    ``hf``: a plain Hugging Face folder (default RUN/merged), LoRA merged in and (with
    ``fold_temperature``) the calibration temperature divided into the classifier's weights. ``onnx``: an
    ONNX graph (default RUN/onnx, or RUN/onnx-int8 with ``quantize="int8"``), checked
    against the torch model on held-out rows (``data``, else the run's test or validation
    split); refused when the primary metric drops more than ``deploy.export.max_metric_drop``
    points, unless ``force``. ``gguf``: one GGUF file for llama.cpp and Ollama (default
    RUN/gguf-f16; ``quantize="q8_0"`` for 8 bits), generation runs only, refused unless its
    greedy answers on held-out prompts equal the merged model's (or ``force``).
    """
    run = Path(run)
    if format not in ("hf", "onnx", "gguf"):
        raise FintuneError(f"unknown export format '{format}'; use hf, onnx or gguf")
    if format == "gguf":
        # llama.cpp's types: f16 (default) or q8_0; --quantize names the type here.
        from fintune.deploy.gguf_export import export_gguf

        kind = quantize or "f16"
        out = Path(output) if output else run / f"gguf-{kind}"
        export_gguf(run, out, kind, force=force, data=data)  # type: ignore[arg-type]
        return out
    if quantize not in (None, "int8"):
        raise FintuneError(f"unknown quantization '{quantize}'; use int8")
    if format == "hf":
        if quantize:
            raise FintuneError("--quantize applies to --format onnx")
        out = Path(output) if output else run / "merged"
        export_hf(run, out, merge=merge, fold_temperature=fold_temperature)
        return out
    if not merge:
        raise FintuneError("ONNX export merges adapters into the weights; drop --no-merge")
    out = Path(output) if output else run / ("onnx-int8" if quantize else "onnx")
    export_onnx(run, out, deploy_config(run, config, overrides).export, quantize=quantize, force=force, data=data)
    return out


__all__ = ["RunResult", "console", "data_check", "evaluate", "export", "load_run_config", "load_split", "predict",
           "read_metrics", "train"]
