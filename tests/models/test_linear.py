"""The linear model reads dense rows and sparse word counts alike."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fintune.config import LinearConfig
from fintune.models.linear import LinearModel


def test_a_sparse_matrix_fits_and_scores_as_its_dense_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 5))
    y = (x[:, 0] > 0.5).astype(int)
    dense = LinearModel.fit(LinearConfig(), "classification", 2, x, y, 0)
    sparse = LinearModel.fit(LinearConfig(), "classification", 2, sp.csr_matrix(x), y, 0)
    assert dense.c == sparse.c
    np.testing.assert_allclose(dense.outputs(x), sparse.outputs(sp.csr_matrix(x)), atol=1e-6)
    assert sparse.outputs(sp.csr_matrix(x)).shape == (60, 2)
