"""``fintune chat RUN``: a conversation with a generation run in the terminal, answers streamed.

Lines are the user's turns; ``/reset`` starts over, ``/exit`` (or end of input) leaves. The
conversation is kept, so later questions can refer to earlier answers; the system prompt is
``--system``, else the one the run was trained with.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from fintune.errors import FintuneError
from fintune.models.generation import Sampling
from fintune.predictors import FintuneModel

COMMANDS = "/reset starts over, /exit leaves"


def load_chat_model(run: str | Path) -> FintuneModel:
    """The run's model, if it answers conversations; an error that says which runs do."""
    model = FintuneModel.load(run)
    if model.chats is not None:
        raise FintuneError(f"{run} is a {model.task} run ({model.name} model): {model.chats}")
    return model


def chat_loop(model: FintuneModel, sampling: Sampling, system: str | None, read: Callable[[], str | None],
              write: Callable[[str], None]) -> list[dict[str, str]]:
    """Read turns until ``/exit`` or the end of input; write each answer as it is generated.
    Returns the conversation."""
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    while True:
        line = read()
        if line is None or line.strip() == "/exit":
            return messages
        if line.strip() == "/reset":
            messages = list(start)
            write("(conversation cleared)\n")
            continue
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line})
        pieces = []
        for piece in model.chat_stream(messages, sampling):
            pieces.append(piece)
            write(piece)
        write("\n")
        messages.append({"role": "assistant", "content": "".join(pieces).strip()})


def terminal_chat(run: str | Path, sampling: Sampling, system: str | None = None) -> list[dict[str, str]]:
    """``fintune chat``: turns from standard input (with a prompt when it is a terminal),
    answers streamed to standard output."""
    from fintune.console import console

    model = load_chat_model(run)
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"chatting with {run} ({COMMANDS})")

    def read() -> str | None:
        if interactive:
            console.print("[bold]you>[/] ", end="")
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    return chat_loop(model, sampling, system, read, write)
