"""The board's tabs, one builder each: its components and the handlers wired to them.

Each builder runs inside the page's ``gr.Blocks``; the config form spans the Data and Train
tabs, so the Train tab receives the Data tab's fields and wires the data check too.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fintune import api
from fintune.board.forms import BOARD, build_config, error, file_columns, ok, report_markdown, stage_upload
from fintune.board.jobs import Jobs, curves, log_tail, progress_line
from fintune.board.listing import finished_runs, run_folder, runs_table
from fintune.board.trying import Models, attribution_html, try_it
from fintune.config import RunConfig, dump_config
from fintune.errors import FintuneError
from fintune.kinds import kind_names
from fintune.strategies import STRATEGIES


@dataclass
class Context:
    """What every tab works on: the runs folder, the training and serving jobs, loaded models."""

    runs: Path
    jobs: Jobs = field(init=False)
    models: Models = field(default_factory=Models)

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.runs / BOARD)

    def run_choices(self) -> Any:
        import gradio as gr

        names = finished_runs(self.runs)
        return gr.Dropdown(choices=names, value=names[0] if names else None)


@dataclass
class DataTab:
    """The Data tab's fields: the file, the task and kind, the columns; its check and status."""

    upload: Any
    path: Any
    task: Any
    kind: Any
    text_column: Any
    feature_columns: Any
    label_column: Any
    date_column: Any
    check: Any
    status: Any
    report: Any


def data_tab(ctx: Context) -> DataTab:
    """Upload or a path, the columns found, the task, kind and column mapping."""
    import gradio as gr

    with gr.Tab("Data"):
        with gr.Row():
            upload = gr.File(label="upload CSV / JSONL / Parquet", type="filepath",
                             file_types=[".csv", ".jsonl", ".json", ".parquet"])
            path = gr.Textbox(label="or a path on this machine", elem_id="data-path")
        load = gr.Button("Load columns", elem_id="load-columns")
        with gr.Row():
            task = gr.Radio(["classification", "regression", "generation"], value="classification", label="task")
            kind = gr.Dropdown(list(kind_names()), value="text", label="model kind")
        with gr.Row():
            text_column = gr.Dropdown([], label="text column", allow_custom_value=True)
            feature_columns = gr.Dropdown([], multiselect=True, label="feature columns")
            label_column = gr.Dropdown([], label="label column", allow_custom_value=True)
            date_column = gr.Dropdown([], label="date column (time split)", allow_custom_value=True)
        check = gr.Button("Check data", elem_id="check-data")
        status = gr.HTML(elem_id="data-status")
        report = gr.Markdown(elem_id="data-report")
    tab = DataTab(upload, path, task, kind, text_column, feature_columns, label_column, date_column, check, status,
                  report)

    def load_file(upload: str | None, path: str) -> tuple[Any, ...]:
        # The upload box is emptied each time (its file is staged), so the next upload fires again.
        return (None, *_columns_of(ctx, upload, path))

    columns = [upload, path, text_column, feature_columns, label_column, date_column, status]
    load.click(load_file, [gr.State(None), path], columns)
    upload.upload(load_file, [upload, path], columns)
    return tab


def _columns_of(ctx: Context, upload: str | None, path: str) -> tuple[str, Any, Any, Any, Any, str]:
    """The file's columns in the mapping's dropdowns, with a guess at the text and label columns."""
    import gradio as gr

    try:
        source = str(stage_upload(upload, ctx.runs)) if upload else (path or "").strip()
        columns = file_columns(source)
    except (FintuneError, OSError) as exc:
        none = gr.Dropdown(choices=[], value=None)
        return path, none, gr.Dropdown(choices=[], value=[]), none, none, error(exc)
    text = next((c for c in columns if c.lower() in ("text", "sentence", "input")), None)
    label = next((c for c in columns if c.lower() in ("label", "target", "output", "y")), None)
    features = [c for c in columns if c not in (text, label)] if text is None else []
    return (source, gr.Dropdown(choices=[""] + columns, value=text or ""),
            gr.Dropdown(choices=columns, value=features), gr.Dropdown(choices=columns, value=label),
            gr.Dropdown(choices=[""] + columns, value=""), ok(f"{len(columns)} columns: {', '.join(columns)}"))


def train_tab(ctx: Context, data: DataTab) -> None:
    """The rest of the config, start / stop / resume, live curves and the equivalent YAML."""
    import gradio as gr

    with gr.Tab("Train"):
        with gr.Row():
            name = gr.Textbox(label="run name", value="board_run", elem_id="run-name")
            backbone = gr.Textbox(label="backbone (registry name, Hub id or path)", value="minilm",
                                  elem_id="backbone")
            strategy = gr.Dropdown(sorted(STRATEGIES), value="full", label="strategy")
        with gr.Row():
            epochs = gr.Number(3, label="epochs", precision=0, elem_id="epochs")
            max_steps = gr.Number(0, label="max steps (0: all)", precision=0, elem_id="max-steps")
            batch_size = gr.Number(32, label="batch size", precision=0, elem_id="batch-size")
            lr = gr.Number(5e-5, label="learning rate", elem_id="lr")
            max_length = gr.Number(128, label="max length", precision=0, elem_id="max-length")
        # The form on top of a YAML config: what the form does not show (cleaning, decisions) is
        # the file's, so the board checks and trains what `fintune data check FILE` would.
        base = gr.Textbox(label="start from config (optional YAML path)", elem_id="base-config")
        with gr.Row():
            start_button = gr.Button("Start", variant="primary", elem_id="start")
            stop_button = gr.Button("Stop", elem_id="stop")
            resume_button = gr.Button("Resume", elem_id="resume")
            yaml_button = gr.Button("Show YAML")
        status = gr.HTML(elem_id="train-status")
        run_state = gr.Markdown(elem_id="run-state")
        progress = gr.Markdown(elem_id="progress")
        with gr.Row():
            loss_plot = gr.LinePlot(x="step", y="loss", title="training loss")
            metric_plot = gr.LinePlot(x="step", y="value", color="metric", title="validation")
        yaml_box = gr.Code(language="yaml", label="the equivalent config (fintune train FILE)")
    form = [name, data.path, data.task, data.kind, data.text_column, data.feature_columns, data.label_column,
            data.date_column, backbone, strategy, epochs, max_steps, batch_size, lr, max_length, base]

    def check_data(*values: Any) -> tuple[str, str]:
        try:
            report = api.data_check(build_config(ctx.runs, *values), output=ctx.runs / BOARD / "data_check.json")
        except (FintuneError, OSError) as exc:
            return error(exc), ""
        return ok("data check passed"), report_markdown(report)

    def show_yaml(*values: Any) -> tuple[str, str]:
        try:
            return dump_config(build_config(ctx.runs, *values)), ""
        except FintuneError as exc:
            return "", error(exc)

    data.check.click(check_data, form, [data.status, data.report])
    yaml_button.click(show_yaml, form, [yaml_box, status])
    start_button.click(lambda *v: _start(ctx, False, *v), form, status)
    resume_button.click(lambda *v: _start(ctx, True, *v), form, status)
    stop_button.click(lambda run: _stop(ctx, run), name, status)
    gr.Timer(1.0).tick(lambda run: _watch(ctx, run), name, [run_state, progress, loss_plot, metric_plot])


def _start(ctx: Context, resume: bool, *values: Any) -> str:
    """Write the form's config and start (or resume) its training in a worker process."""
    try:
        cfg: RunConfig = build_config(ctx.runs, *values)
    except FintuneError as exc:
        return error(exc)
    run = Path(cfg.output_dir)
    state = ctx.jobs.status(run)
    if state == "running":
        return error(f"{run.name} is running already")
    if resume and state != "stopped (resumable)":
        return error(f"{run.name} has no checkpoint to resume ({state})")
    if not resume and state in ("finished", "stopped (resumable)"):
        return error(f"{run.name} holds a {state} run; resume it or choose another run name")
    config = ctx.runs / BOARD / "configs" / f"{run.name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(dump_config(cfg), encoding="utf-8")
    ctx.jobs.train(config, run, resume=resume)
    return ok(f"{'resumed' if resume else 'started'} {run.name}")


def _stop(ctx: Context, name: str) -> str:
    return _stop_job(ctx, name, ctx.jobs.stop, f"stopping {name}: it checkpoints after this step",
                     f"no training of '{name}' is running")


def _stop_job(ctx: Context, name: str, stop: Callable[[Path], bool], stopping: str, missing: str) -> str:
    """Stop the run's training or server (``stop``): a line saying so, or that none was running."""
    try:
        run = run_folder(ctx.runs, name)
    except FintuneError as exc:
        return error(exc)
    return ok(stopping) if name and stop(run) else error(missing)


def _watch(ctx: Context, name: str) -> tuple[str, str, pd.DataFrame, pd.DataFrame]:
    """The run's state, progress line (the log's tail when it failed) and curves, each second."""
    try:
        run = run_folder(ctx.runs, name)
    except FintuneError:
        run = None
    if run is None or not run.exists():
        return "", "", pd.DataFrame(columns=["step", "loss"]), pd.DataFrame(columns=["step", "metric", "value"])
    state = ctx.jobs.status(run)
    detail = progress_line(run)
    if state == "failed":
        detail += "\n\n```\n" + log_tail(ctx.jobs.log(run)) + "\n```"
    loss, metrics = curves(run)
    return f"**{name}**: <span id='run-status'>{state}</span>", detail, loss, metrics


def runs_tab(ctx: Context) -> None:
    """The runs side by side, and an HTML report for one of them."""
    import gradio as gr

    with gr.Tab("Runs"):
        refresh = gr.Button("Refresh")
        table = gr.Dataframe(value=runs_table(ctx.runs, ctx.jobs), interactive=False, datatype="markdown",
                             elem_id="runs-table")
        with gr.Row():
            report_run = gr.Dropdown(finished_runs(ctx.runs), label="run")
            report_button = gr.Button("Write HTML report")
        report_status = gr.HTML()
    refresh.click(lambda: (runs_table(ctx.runs, ctx.jobs), ctx.run_choices()), None, [table, report_run])
    report_button.click(lambda name: _write_report(ctx, name), report_run, report_status)


def _write_report(ctx: Context, name: str) -> str:
    try:
        from fintune.report import write_report
        path = write_report(run_folder(ctx.runs, name))
    except (FintuneError, OSError) as exc:
        return error(exc)
    link = f"/gradio_api/file={html.escape(str(path), quote=True)}"
    return f"<div class='ok'>report written: <a href='{link}' target='_blank'>{html.escape(path.name)}</a></div>"


def try_tab(ctx: Context) -> None:
    """One text or row through a finished run: its label, probabilities and attributions."""
    import gradio as gr

    with gr.Tab("Try it"):
        with gr.Row():
            run = gr.Dropdown(finished_runs(ctx.runs), label="run", elem_id="try-run")
            refresh = gr.Button("Refresh runs", elem_id="try-refresh")
        text = gr.Textbox(label="text", elem_id="try-text")
        row = gr.Dataframe(label="row (feature models)", interactive=True)
        predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
        status = gr.HTML(elem_id="try-status")
        label_out = gr.Label(label="prediction", elem_id="prediction")
        parts_out = gr.HighlightedText(label="entities", visible=True)
        # Attributions in the report's colours (green toward the label, red against): Gradio's
        # numeric HighlightedText shades positive red, the reverse of what a reviewer just read.
        why_out = gr.HTML(label="attributions (green toward the label, red against)", elem_id="try-why")

    def predict(name: str, text: str, row: pd.DataFrame) -> tuple[Any, list, str, str]:
        try:
            if not name:
                raise FintuneError("choose a finished run first")
            label, parts = try_it(ctx.models.get(run_folder(ctx.runs, name)), text, row)
        except (FintuneError, ValueError) as exc:
            return None, [], "", error(exc)
        if parts and all(isinstance(p[1], float) for p in parts):  # attributions, not entity types
            return label, [], attribution_html(parts), ok("predicted")
        return label, parts, "", ok("predicted")

    def row_editor(name: str) -> Any:
        if not name:
            return gr.Dataframe(value=None)
        columns = list(ctx.models.get(run_folder(ctx.runs, name)).data_config.feature_columns or [])
        return gr.Dataframe(value=pd.DataFrame([[""] * len(columns)], columns=columns) if columns else None)

    refresh.click(ctx.run_choices, None, run)
    run.change(row_editor, run, row)
    predict_button.click(predict, [run, text, row], [label_out, parts_out, why_out, status])


def deploy_tab(ctx: Context) -> None:
    """ONNX (int8) export, and an HTTP server started and stopped per run."""
    import gradio as gr

    with gr.Tab("Deploy"):
        run = gr.Dropdown(finished_runs(ctx.runs), label="run")
        with gr.Row():
            int8 = gr.Checkbox(True, label="int8")
            export_button = gr.Button("Export ONNX")
        with gr.Row():
            port = gr.Number(8000, label="port", precision=0)
            serve_button = gr.Button("Start server")
            unserve_button = gr.Button("Stop server")
        status = gr.HTML()
    run.focus(ctx.run_choices, None, run)
    export_button.click(lambda name, q: _export(ctx, name, q), [run, int8], status)
    serve_button.click(lambda name, p: _serve(ctx, name, p), [run, port], status)
    unserve_button.click(lambda name: _stop_serving(ctx, name), run, status)


def _export(ctx: Context, name: str, int8: bool) -> str:
    try:
        out = api.export(run_folder(ctx.runs, name), format="onnx", quantize="int8" if int8 else None)
    except (FintuneError, OSError) as exc:
        return error(exc)
    check = json.loads((out / "export.json").read_text(encoding="utf-8")) if (out / "export.json").exists() else {}
    return ok(f"exported to {out}; check: {json.dumps(check.get('check', check))[:400]}")


def _serve(ctx: Context, name: str, port: float) -> str:
    if not name:
        return error("choose a finished run first")
    try:
        run = run_folder(ctx.runs, name)
    except FintuneError as exc:
        return error(exc)
    if ctx.jobs.server(run):
        return error(f"{name} is served already")
    ctx.jobs.serve(run, int(port))
    return ok(f"server starting: http://127.0.0.1:{int(port)}/docs")


def _stop_serving(ctx: Context, name: str) -> str:
    return _stop_job(ctx, name, ctx.jobs.stop_server, f"server of {name} stopping", f"no server of '{name}' is running")
