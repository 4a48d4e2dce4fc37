"""Continued pretraining on unlabeled text (``fintune pretrain``): see :mod:`fintune.pretrain.run`."""

from fintune.pretrain.run import pretrain

__all__ = ["pretrain"]
