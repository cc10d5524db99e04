"""Per-cell k-NN banks: the answer for a cell where nothing moved is cached, and must be the answer
a KD-tree query of that cell would give (live scoring relies on it for most cells of every frame)."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from vlm_anomaly.motion.density import CellBanks, neighbours


def _direct(banks: CellBanks, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cell of each frame queried on its own tree: the meaning of :meth:`CellBanks.query`."""
    n, cells, _ = X.shape
    dist, near = np.zeros((n, cells)), np.full((n, cells), -1, np.int64)
    for c in range(cells):
        tree = cKDTree(banks.rows[banks.members[c]])
        k = min(banks.k, tree.n)
        for j in range(n):
            d, i = tree.query(X[j, c], k=k)
            d, i = np.atleast_1d(d), np.atleast_1d(i)
            dist[j, c], near[j, c] = d.mean(), banks.members[c][i[0]]
    return dist, near


@pytest.mark.parametrize("k", [1, 3])
def test_idle_cells_get_the_answer_of_their_own_query(k):
    rng = np.random.default_rng(0)
    rows, cols, dim = 3, 4, 5
    cells = rows * cols
    ex = rng.normal(size=(400, dim)).astype(np.float32)
    ex[::7] = 0.0  # normal examples where nothing moved, as the banks keep them
    banks = CellBanks(ex, rng.integers(0, cells, len(ex)), cells, neighbours(rows, cols, 1), k)
    X = rng.normal(size=(6, cells, dim)).astype(np.float32)
    X[rng.random((6, cells)) < 0.6] = 0.0  # most cells idle, some frames with every cell idle
    X[2] = 0.0
    X[4, :, :] = -0.0  # a negative zero is still nothing moving
    for batch in (X, *[X[j:j + 1] for j in range(len(X))]):  # offline (all frames) and live (one at a time)
        got = banks.query(batch)
        want = _direct(banks, batch)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_a_cell_without_examples_is_judged_by_its_distance_from_nothing_moving():
    ex = np.ones((5, 2), np.float32)
    banks = CellBanks(ex, np.zeros(5, np.int64), 2, None, 1)  # cell 1 has no examples
    X = np.array([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [0.0, 0.0]]], np.float32)
    dist, near = banks.query(X)
    assert dist[0, 1] == 5.0 and dist[1, 1] == 0.0 and (near[:, 1] == -1).all()
    assert dist[1, 0] == 0.0 and dist[0, 0] == pytest.approx(np.sqrt(2))
