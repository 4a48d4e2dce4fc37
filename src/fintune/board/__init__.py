"""The fintune board: a web UI over the Python API (``fintune board``)."""

from fintune.board.app import build_board, launch

__all__ = ["build_board", "launch"]
