"""The board: fintune's workflow in a browser (Gradio), over the same API and run directories.

Tabs: Data (upload or path, column mapping, the data check), Train (typed config, its YAML,
start / stop / resume in a worker process, live loss and validation curves), Runs (side by
side, HTML reports), Try it (a text or a row: label, probabilities, attributions) and
Deploy (ONNX / int8 export, start and stop the HTTP server). Errors a user can fix are shown
in the page, in the tab's status line; the app keeps working.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import shutil
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import pandas as pd

from fintune import api
from fintune.board.guard import BoardGuard, is_loopback
from fintune.board.jobs import Jobs, curves, log_tail, progress_line
from fintune.config import RunConfig, dump_config, validate_config
from fintune.data import Examples
from fintune.data.load import read_table
from fintune.errors import FintuneError
from fintune.models.kinds.generation import GenerationPredictor
from fintune.predictors import FintuneModel, TaggerPredictor
from fintune.rundir import read_run_files
from fintune.kinds import kind_names
from fintune.tasks import task_of
from fintune.strategies import STRATEGIES

BOARD = ".board"  # under the runs folder: uploads and the configs the board wrote
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# Messages quote file names, columns, run names and cell values: escaped, they are never markup.
def ok(message: str) -> str:
    return f"<div class='ok'>{html.escape(message)}</div>"


def error(exc: Exception | str) -> str:
    return f"<div class='error'>error: {html.escape(str(exc))}</div>"


# ---------------------------------------------------------------- data


def stage_upload(path: str, runs: Path) -> Path:
    """Copy an uploaded file under RUNS/.board/uploads, so the run config can name it later."""
    target = runs / BOARD / "uploads" / Path(path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def file_columns(path: str) -> list[str]:
    """The columns of a data file, read as training reads it (DataError when unreadable)."""
    if not path or not Path(path).is_file():
        raise FintuneError(f"no such file: {path or '(none)'}; upload a file or give a path on this machine")
    table = read_table(path, "auto", "utf-8")
    return [str(c) for c in table.columns]


def build_config(runs: Path, name: str, path: str, task: str, kind: str, text_column: str | None,
                 feature_columns: list[str] | None, label_column: str | None, date_column: str | None,
                 backbone: str, strategy: str, epochs: float, max_steps: float, batch_size: float, lr: float,
                 max_length: float) -> RunConfig:
    """The run config from the form, validated by the same models as a YAML file."""
    if not NAME.match(name or ""):
        raise FintuneError("run name: letters, digits, '_', '-' or '.', starting with a letter or digit")
    raw: dict[str, Any] = {
        "output_dir": str(runs / name), "task": task,
        "data": {"train": path, "text_column": text_column or None, "feature_columns": feature_columns or None,
                 "label_column": label_column or "label", "date_column": date_column or None},
        "model": {"backbone": backbone, "kind": kind, "max_length": int(max_length)},
        "strategy": {"name": strategy},
        "train": {"epochs": int(epochs), "max_steps": int(max_steps) or None, "batch_size": int(batch_size),
                  "lr": float(lr)},
    }
    return validate_config(raw, source="board")


def report_markdown(report: dict[str, Any]) -> str:
    """The data check as Markdown: rows, balance or target, lengths, cleaning, personal data."""
    lines = ["| split | rows | text length |", "|---|---:|---|"]
    for split, rows in report["rows"].items():
        length = report.get("text_length", {}).get(split, {})
        lines.append(f"| {split} | {rows} | mean {length.get('mean', '')} {length.get('unit', '')}, "
                     f"p95 {length.get('p95', '')} |")
    if report.get("class_balance"):
        splits = list(report["class_balance"])
        lines += ["", "| label | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
        for label in report["class_balance"][splits[0]]:
            lines.append(f"| {label} | " + " | ".join(str(report["class_balance"][s][label]) for s in splits) + " |")
    conflicts = report.get("conflicts") or {}
    privacy = report.get("privacy") or {}
    masked = ", ".join(f"{k} {v}" for k, v in (privacy.get("counts") or {}).items()) or "none found"
    lines += ["", f"- duplicates removed: {report.get('duplicates_removed', 0)}",
              f"- conflicting labels: {conflicts.get('count', 0)} texts"
              + (" (dropped)" if conflicts.get("dropped") else ""),
              f"- train/eval overlap removed: {report.get('overlap_removed', {})}",
              f"- split: {report.get('split', {}).get('method')} {report.get('split', {}).get('note') or ''}",
              f"- personal data masked: {masked}" if privacy.get("masked") else "- personal data: not masked"]
    return "\n".join(lines)


# ---------------------------------------------------------------- runs


def list_runs(runs: Path) -> list[Path]:
    """Run folders (those with a config.yaml), newest first."""
    if not runs.is_dir():
        return []
    # Hidden folders are fintune's own: the board's files, a run being replaced (.NAME.next).
    found = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.yaml").exists()]
    return sorted(found, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)


def runs_table(runs: Path, jobs: Jobs) -> pd.DataFrame:
    """One row per run: status, what was trained, the primary metric and the cost."""
    rows = []
    for run in list_runs(runs):
        try:
            cfg, metrics = read_run_files(run)
        except FintuneError as exc:  # one damaged run is a row that says so, not a board that fails
            rows.append({"run": run.name, "status": f"damaged: {exc}"})
            continue
        task = str(cfg.get("task") or "classification")
        try:
            name = task_of(task).headline_metric
        except ValueError:
            rows.append({"run": run.name, "status": f"damaged: unknown task {task!r} in its config.yaml"})
            continue
        model, training = _section(cfg, "model"), _section(metrics, "training")
        report = run / "report.html"
        rows.append({
            "run": run.name, "status": jobs.status(run), "task": cfg.get("task"),
            "kind": model.get("kind"), "strategy": _section(cfg, "strategy").get("name"),
            "backbone": Path(str(model.get("backbone"))).name, "metric": name,
            "validation": _round(_section(metrics, "validation").get(name)),
            "test": _round(_section(metrics, "test").get(name)),
            "trainable_params": training.get("trainable_params"), "train_seconds": training.get("train_seconds"),
            "report": f"[open](/gradio_api/file={report})" if report.exists() else "",
        })
    return pd.DataFrame(rows, columns=["run", "status", "task", "kind", "strategy", "backbone", "metric",
                                       "validation", "test", "trainable_params", "train_seconds", "report"])


def _section(values: dict[str, Any], key: str) -> dict[str, Any]:
    """``values[key]`` when it is a mapping, else empty (a hand-edited config may hold anything)."""
    section = values.get(key)
    return section if isinstance(section, dict) else {}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run_folder(runs: Path, name: str | None) -> Path:
    """The folder of the run ``name``: a folder directly inside ``runs``, never outside it."""
    name = (name or "").strip()
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
        raise FintuneError(f"run name '{name}' must be a plain folder name inside {runs} (no '/', no leading '.')")
    path = runs / name
    if path.resolve().parent != runs.resolve():
        raise FintuneError(f"run name '{name}' points outside {runs}")
    return path


def finished_runs(runs: Path) -> list[str]:
    return [p.name for p in list_runs(runs) if (p / "metrics.json").exists()]


# ---------------------------------------------------------------- try it


class Models:
    """Loaded models by run, reloaded when the run's model changes on disk."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[float, FintuneModel]] = {}

    def get(self, run: Path) -> FintuneModel:
        stamp = (run / "model" / "fintune.json").stat().st_mtime if (run / "model" / "fintune.json").exists() else 0.0
        key = str(run)
        if key not in self.cache or self.cache[key][0] != stamp:
            self.cache[key] = (stamp, FintuneModel.load(run))
        return self.cache[key][1]


def marked_entities(text: str, entities: list[Any]) -> list[tuple[str, str | None]]:
    """The text in pieces, each entity labelled by its type and the rest by None (for
    Gradio's HighlightedText)."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for e in entities:
        if e.start > at:
            pieces.append((text[at:e.start], None))
        pieces.append((text[e.start:e.end], e.type))
        at = e.end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def try_it(model: FintuneModel, text: str | None, row: pd.DataFrame | None) -> tuple[dict[str, float] | str, list]:
    """Label probabilities (or the generated answer) and attributions of one text or row; for
    a tagger, its entities and the text with each entity marked by its type."""
    from fintune.evaluation.explain import explain

    if isinstance(model, TaggerPredictor):
        if not (text or "").strip():
            raise FintuneError("type a text first")
        found = model.entities([text or ""])[0]
        return ", ".join(f"{e.text} ({e.type})" for e in found) or "no entities", marked_entities(text or "", found)
    if model.data_config.text_column is not None and model.data_config.feature_columns is None:
        if not (text or "").strip():
            raise FintuneError("type a text first")
        examples, table = Examples([text], None, None, "board"), None
    else:
        if row is None or row.empty:
            raise FintuneError("fill in the row's columns first")
        table = row.iloc[:1].reset_index(drop=True)
        table.index = [1]
        for column in table.columns:  # the page's cells are text: numbers become numbers again
            try:
                table[column] = pd.to_numeric(table[column])
            except (ValueError, TypeError):
                pass
        examples = model.examples_of(table, "board")
    if isinstance(model, GenerationPredictor):
        return model.generate(examples)[0], []
    out = model.outputs(examples)
    if task_of(model.task).answer == "value":
        return {f"prediction {float(out[0]):.4f}": 1.0}, []
    probs = {name: float(p) for name, p in zip(model.label_names or [], out[0])}
    if model.explanation_method is None:
        return probs, []
    parts = explain(model, examples, 0, table).parts
    peak = max((abs(v) for _, v in parts), default=0.0) or 1.0
    # Scaled to [-1, 1]: the page colours toward the label (positive) or against it (negative).
    return probs, [(part + " ", float(value) / peak) for part, value in parts]


# ---------------------------------------------------------------- the page

CSS = """
.error {color: #b00020; font-weight: 600}
.ok {color: #1b5e20}
"""


def build_board(runs: Path) -> Any:
    """The Gradio app over the runs folder ``runs``."""
    import gradio as gr

    runs = runs.resolve()
    jobs, models = Jobs(runs / BOARD), Models()
    strategies = sorted(STRATEGIES)

    def load_file(upload: str | None, path: str) -> tuple[Any, ...]:
        # The upload box is emptied each time (its file is staged), so the next upload fires again.
        return (None, *columns_of(upload, path))

    def columns_of(upload: str | None, path: str) -> tuple[str, Any, Any, Any, Any, str]:
        try:
            source = str(stage_upload(upload, runs)) if upload else (path or "").strip()
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

    def form_config(*values: Any) -> RunConfig:
        return build_config(runs, *values)

    def check_data(*values: Any) -> tuple[str, str]:
        try:
            cfg = form_config(*values)
            report = api.data_check(cfg, output=runs / BOARD / "data_check.json")
        except (FintuneError, OSError) as exc:
            return error(exc), ""
        return ok("data check passed"), report_markdown(report)

    def show_yaml(*values: Any) -> tuple[str, str]:
        try:
            return dump_config(form_config(*values)), ""
        except FintuneError as exc:
            return "", error(exc)

    def start(resume: bool, *values: Any) -> str:
        try:
            cfg = form_config(*values)
        except FintuneError as exc:
            return error(exc)
        run = Path(cfg.output_dir)
        state = jobs.status(run)
        if state == "running":
            return error(f"{run.name} is running already")
        if resume and state != "stopped (resumable)":
            return error(f"{run.name} has no checkpoint to resume ({state})")
        if not resume and state in ("finished", "stopped (resumable)"):
            return error(f"{run.name} holds a {state} run; resume it or choose another run name")
        config = runs / BOARD / "configs" / f"{run.name}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(dump_config(cfg), encoding="utf-8")
        jobs.train(config, run, resume=resume)
        return ok(f"{'resumed' if resume else 'started'} {run.name}")

    def stop(name: str) -> str:
        try:
            run = run_folder(runs, name)
        except FintuneError as exc:
            return error(exc)
        return ok(f"stopping {name}: it checkpoints after this step") if name and jobs.stop(run) else \
            error(f"no training of '{name}' is running")

    def watch(name: str) -> tuple[str, str, pd.DataFrame, pd.DataFrame]:
        try:
            run = run_folder(runs, name)
        except FintuneError:
            run = None
        if run is None or not run.exists():
            return "", "", pd.DataFrame(columns=["step", "loss"]), pd.DataFrame(columns=["step", "metric", "value"])
        state = jobs.status(run)
        detail = progress_line(run)
        if state == "failed":
            detail += "\n\n```\n" + log_tail(jobs.log(run)) + "\n```"
        loss, metrics = curves(run)
        return f"**{name}**: <span id='run-status'>{state}</span>", detail, loss, metrics

    def run_choices() -> Any:
        names = finished_runs(runs)
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    def predict(name: str, text: str, row: pd.DataFrame) -> tuple[Any, list, str]:
        try:
            if not name:
                raise FintuneError("choose a finished run first")
            label, parts = try_it(models.get(run_folder(runs, name)), text, row)
        except (FintuneError, ValueError) as exc:
            return None, [], error(exc)
        return label, parts, ok("predicted")

    def row_editor(name: str) -> Any:
        if not name:
            return gr.Dataframe(value=None)
        data = models.get(run_folder(runs, name)).data_config
        columns = list(data.feature_columns or [])
        return gr.Dataframe(value=pd.DataFrame([[""] * len(columns)], columns=columns) if columns else None)

    def write_report(name: str) -> str:
        try:
            from fintune.report import write_report as write
            path = write(run_folder(runs, name))
        except (FintuneError, OSError) as exc:
            return error(exc)
        link = f"/gradio_api/file={html.escape(str(path), quote=True)}"
        return f"<div class='ok'>report written: <a href='{link}' target='_blank'>{html.escape(path.name)}</a></div>"

    def export(name: str, int8: bool) -> str:
        try:
            out = api.export(run_folder(runs, name), format="onnx", quantize="int8" if int8 else None)
        except (FintuneError, OSError) as exc:
            return error(exc)
        check = json.loads((out / "export.json").read_text(encoding="utf-8")) if (out / "export.json").exists() else {}
        return ok(f"exported to {out}; check: {json.dumps(check.get('check', check))[:400]}")

    def serve(name: str, port: float) -> str:
        if not name:
            return error("choose a finished run first")
        try:
            run = run_folder(runs, name)
        except FintuneError as exc:
            return error(exc)
        if jobs.server(run):
            return error(f"{name} is served already")
        jobs.serve(run, int(port))
        return ok(f"server starting: http://127.0.0.1:{int(port)}/docs")

    def stop_serving(name: str) -> str:
        try:
            run = run_folder(runs, name)
        except FintuneError as exc:
            return error(exc)
        return ok(f"server of {name} stopping") if jobs.stop_server(run) else \
            error(f"no server of '{name}' is running")

    with gr.Blocks(title="fintune board") as demo:
        gr.Markdown("# fintune board")
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
            data_status = gr.HTML(elem_id="data-status")
            data_report = gr.Markdown(elem_id="data-report")
        with gr.Tab("Train"):
            with gr.Row():
                name = gr.Textbox(label="run name", value="board_run", elem_id="run-name")
                backbone = gr.Textbox(label="backbone (registry name, Hub id or path)", value="minilm",
                                      elem_id="backbone")
                strategy = gr.Dropdown(strategies, value="full", label="strategy")
            with gr.Row():
                epochs = gr.Number(3, label="epochs", precision=0, elem_id="epochs")
                max_steps = gr.Number(0, label="max steps (0: all)", precision=0, elem_id="max-steps")
                batch_size = gr.Number(32, label="batch size", precision=0, elem_id="batch-size")
                lr = gr.Number(5e-5, label="learning rate", elem_id="lr")
                max_length = gr.Number(128, label="max length", precision=0, elem_id="max-length")
            with gr.Row():
                start_button = gr.Button("Start", variant="primary", elem_id="start")
                stop_button = gr.Button("Stop", elem_id="stop")
                resume_button = gr.Button("Resume", elem_id="resume")
                yaml_button = gr.Button("Show YAML")
            train_status = gr.HTML(elem_id="train-status")
            run_state = gr.Markdown(elem_id="run-state")
            progress = gr.Markdown(elem_id="progress")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="loss", title="training loss")
                metric_plot = gr.LinePlot(x="step", y="value", color="metric", title="validation")
            yaml_box = gr.Code(language="yaml", label="the equivalent config (fintune train FILE)")
        with gr.Tab("Runs"):
            refresh = gr.Button("Refresh")
            table = gr.Dataframe(value=runs_table(runs, jobs), interactive=False, datatype="markdown",
                                 elem_id="runs-table")
            with gr.Row():
                report_run = gr.Dropdown(finished_runs(runs), label="run")
                report_button = gr.Button("Write HTML report")
            report_status = gr.HTML()
        with gr.Tab("Try it"):
            with gr.Row():
                try_run = gr.Dropdown(finished_runs(runs), label="run", elem_id="try-run")
                try_refresh = gr.Button("Refresh runs", elem_id="try-refresh")
            text = gr.Textbox(label="text", elem_id="try-text")
            row = gr.Dataframe(label="row (feature models)", interactive=True)
            predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
            try_status = gr.HTML(elem_id="try-status")
            label_out = gr.Label(label="prediction", elem_id="prediction")
            parts_out = gr.HighlightedText(label="attributions (toward / against the label)")
        with gr.Tab("Deploy"):
            deploy_run = gr.Dropdown(finished_runs(runs), label="run")
            with gr.Row():
                int8 = gr.Checkbox(True, label="int8")
                export_button = gr.Button("Export ONNX")
            with gr.Row():
                port = gr.Number(8000, label="port", precision=0)
                serve_button = gr.Button("Start server")
                unserve_button = gr.Button("Stop server")
            deploy_status = gr.HTML()

        form = [name, path, task, kind, text_column, feature_columns, label_column, date_column, backbone, strategy,
                epochs, max_steps, batch_size, lr, max_length]
        columns = [upload, path, text_column, feature_columns, label_column, date_column, data_status]
        load.click(load_file, [gr.State(None), path], columns)
        upload.upload(load_file, [upload, path], columns)
        check.click(check_data, form, [data_status, data_report])
        yaml_button.click(show_yaml, form, [yaml_box, train_status])
        start_button.click(lambda *v: start(False, *v), form, train_status)
        resume_button.click(lambda *v: start(True, *v), form, train_status)
        stop_button.click(stop, name, train_status)
        gr.Timer(1.0).tick(watch, name, [run_state, progress, loss_plot, metric_plot])
        refresh.click(lambda: (runs_table(runs, jobs), run_choices()), None, [table, report_run])
        report_button.click(write_report, report_run, report_status)
        try_refresh.click(run_choices, None, try_run)
        try_run.change(row_editor, try_run, row)
        predict_button.click(predict, [try_run, text, row], [label_out, parts_out, try_status])
        deploy_run.focus(run_choices, None, deploy_run)
        export_button.click(export, [deploy_run, int8], deploy_status)
        serve_button.click(serve, [deploy_run, port], deploy_status)
        unserve_button.click(stop_serving, deploy_run, deploy_status)
    return demo


def launch(runs: Path, host: str = "127.0.0.1", port: int = 7860, password: str | None = None,
           block: bool = True, allowed_hosts: Iterable[str] = (),
           password_env: str = "FINTUNE_BOARD_PASSWORD") -> Any:
    """Start the board on ``host:port`` (loopback by default); with ``password`` the page asks for
    it, and off loopback a password is required. The board answers only to the host names it is
    reached by and to same-origin changes, and limits wrong passwords (see :mod:`fintune.board.guard`)."""
    from starlette.middleware import Middleware

    if password is None and not is_loopback(host):
        raise FintuneError(f"the board on {host} is reachable from other machines and starts training and servers: "
                           f"set a password in ${password_env} (or bind --host 127.0.0.1)")
    runs.mkdir(parents=True, exist_ok=True)
    demo = build_board(runs)
    auth = (lambda _user, given: hmac.compare_digest(given.encode(), password.encode())) if password else None
    guard = Middleware(BoardGuard, bind=host, allowed_hosts=tuple(allowed_hosts))
    demo.launch(server_name=host, server_port=port, auth=auth, allowed_paths=[str(runs.resolve())],
                prevent_thread_lock=not block, show_error=True, css=CSS, app_kwargs={"middleware": [guard]})
    return demo
