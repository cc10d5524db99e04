"""kNN, Gaussian, Isolation Forest, ensemble and patch kNN detectors: behaviour and safe round trips."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.ensemble import IsolationForest

from vlm_anomaly.detectors import DETECTORS, create_detector
from vlm_anomaly.encoders.base import EncoderIdentity
from vlm_anomaly.model import AnomalyModel
from vlm_anomaly.store import ModelStore

NEW = ["knn", "gaussian", "iforest", "ensemble", "patch-knn", "patchcore", "padim"]
DIM = 24


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows on a smooth low-dimensional trajectory (like video frames), plus outliers."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6, 240)
    basis = rng.normal(size=(3, DIM))
    X = np.stack([np.sin(t), np.cos(2 * t), np.sin(3 * t)], 1) @ basis + 0.05 * rng.normal(size=(240, DIM))
    out = X[rng.choice(240, 10)] + rng.normal(scale=3.0, size=(10, DIM))
    return X.astype(np.float32), out.astype(np.float32)


@pytest.mark.parametrize("name", NEW)
def test_registered_detector_separates_outliers(name):
    X, out = _data()
    det = create_detector(name, nu=0.1, k=3, groups=4).fit(X)
    normal = det.decision_function(X)
    odd = det.decision_function(out)
    assert np.median(odd) < 0 < np.median(normal)
    assert odd.max() < np.quantile(normal, 0.5)
    assert set(np.unique(det.predict(out))) <= {-1, 1}


@pytest.mark.parametrize("name", NEW)
def test_round_trip_through_model_store(tmp_path, name):
    X, out = _data(1)
    det = create_detector(name, nu=0.1, k=3, groups=4).fit(X)
    model = AnomalyModel(encoder=EncoderIdentity("test", "toy", "none", DIM), detector=det)
    store = ModelStore(tmp_path)
    store.save(model, "m")
    loaded = store.load("m")
    assert type(loaded.detector) is DETECTORS[name]
    Q = np.concatenate([X[:50], out])
    np.testing.assert_allclose(loaded.decision_function(Q), det.decision_function(Q), atol=1e-6, rtol=0)
    assert loaded.detector.get_params() == det.get_params()


def test_iforest_matches_scikit_learn_from_plain_arrays():
    X, out = _data(2)
    det = create_detector("iforest", nu=0.1, n_estimators=60).fit(X)
    ref = IsolationForest(n_estimators=60, contamination=0.1, random_state=0).fit(X)
    Q = np.concatenate([X, out])
    np.testing.assert_allclose(det.decision_function(Q), ref.decision_function(Q), atol=1e-9)
    assert "_sklearn" not in det.get_state()[1]


def test_gaussian_is_mahalanobis_with_ledoit_wolf():
    X, out = _data(3)
    det = create_detector("gaussian", nu=0.2).fit(X)
    lw = LedoitWolf().fit(X.astype(np.float64))
    d = np.sqrt(lw.mahalanobis(out.astype(np.float64)))
    np.testing.assert_allclose(det.radius_ - det.decision_function(out), d, rtol=1e-6)
    assert abs((det.decision_function(X) < 0).mean() - 0.2) < 0.02


def test_knn_threshold_is_calibrated_on_held_out_training_frames():
    X, _ = _data(4)
    det = create_detector("knn", nu=0.1, k=3).fit(X)
    # the held-out calibration puts ~nu of training rows below 0; in-sample scores are higher
    assert abs((det.train_scores_ < 0).mean() - 0.1) < 0.02
    assert (det.decision_function(X) < 0).mean() < 0.1


@pytest.mark.parametrize("name", ["patch-knn", "patchcore", "padim"])
def test_patch_detectors_find_the_changed_cell(name):
    X, _ = _data(5)
    det = create_detector(name, groups=4).fit(X)
    Y = X[:3].copy()
    Y[1, 12:18] += 4.0  # cell 2 of frame 1
    cells = det.cell_scores(Y)
    assert int(np.argmax(cells[1])) == 2
    s = det.decision_function(Y)
    assert s[1] < 0 and s[1] < min(s[0], s[2])


def test_patchcore_bank_is_position_free():
    """A normal cell content appearing at another position is normal for patchcore, not for patch-knn."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=3), rng.normal(size=3) + 6  # cell 0 always shows a, cell 1 always b
    X = np.concatenate([a + 0.05 * rng.normal(size=(200, 3)), b + 0.05 * rng.normal(size=(200, 3))], 1)
    swapped = np.concatenate([b, a])[None, :]
    local = create_detector("patch-knn", groups=2).fit(X)
    anywhere = create_detector("patchcore", groups=2).fit(X)
    assert local.decision_function(swapped)[0] < 0
    assert anywhere.decision_function(swapped)[0] > anywhere.decision_function(swapped + 3)[0]
    assert anywhere.cell_scores(swapped).max() < 0.01 * local.cell_scores(swapped).max()


def test_patch_knn_rejects_a_dimension_not_divisible_by_cells():
    X, _ = _data()
    with pytest.raises(ValueError, match="multiple"):
        create_detector("patch-knn", groups=5).fit(X)


def test_ensemble_rejects_tampered_member_state(tmp_path):
    X, _ = _data()
    det = create_detector("ensemble", members=("knn", "gaussian")).fit(X)
    meta, arrays = det.get_state()
    meta["member_states"] = meta["member_states"][:1]
    with pytest.raises(ValueError):
        type(det).from_state(meta, arrays)
