"""The board: fintune's workflow in a browser (Gradio), over the same API and run directories.

Tabs (:mod:`fintune.board.tabs`): Data (upload or path, column mapping, the data check), Train
(typed config, its YAML, start / stop / resume in a worker process, live loss and validation
curves), Runs (side by side, HTML reports), Try it (a text or a row: label, probabilities,
attributions) and Deploy (ONNX / int8 export, start and stop the HTTP server). Errors a user
can fix are shown in the page, in the tab's status line; the app keeps working.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fintune.board import tabs
from fintune.board.guard import BoardGuard, is_loopback
from fintune.errors import FintuneError

CSS = """
.error {color: #b00020; font-weight: 600}
.ok {color: #1b5e20}
"""


def build_board(runs: Path) -> Any:
    """The Gradio app over the runs folder ``runs``: one builder per tab."""
    import gradio as gr

    ctx = tabs.Context(runs.resolve())
    with gr.Blocks(title="fintune board") as demo:
        gr.Markdown("# fintune board")
        data = tabs.data_tab(ctx)
        tabs.train_tab(ctx, data)
        tabs.runs_tab(ctx)
        tabs.try_tab(ctx)
        tabs.deploy_tab(ctx)
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
