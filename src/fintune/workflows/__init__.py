"""Workflows built from the API: distillation, hyperparameter search, walk-forward evaluation
and the offline quickstart. Each runs :mod:`fintune.api` functions (several runs, one study)."""
