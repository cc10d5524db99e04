"""The patch kNN detector (worst tile): behaviour and safe round trips; removed detectors fail clearly."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from vlm_anomaly.config import load_settings
from vlm_anomaly.detectors import DETECTORS, create_detector, detector_names
from vlm_anomaly.encoders.base import EncoderIdentity
from vlm_anomaly.errors import ConfigError, VlmAnomalyError
from vlm_anomaly.model import AnomalyModel
from vlm_anomaly.store import ModelStore

DIM = 24


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows on a smooth low-dimensional trajectory (like video frames), plus outliers."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6, 240)
    basis = rng.normal(size=(3, DIM))
    X = np.stack([np.sin(t), np.cos(2 * t), np.sin(3 * t)], 1) @ basis + 0.05 * rng.normal(size=(240, DIM))
    out = X[rng.choice(240, 10)] + rng.normal(scale=3.0, size=(10, DIM))
    return X.astype(np.float32), out.astype(np.float32)


def test_patch_knn_separates_outliers():
    X, out = _data()
    det = create_detector("patch-knn", nu=0.1, groups=4).fit(X)
    normal = det.decision_function(X)
    odd = det.decision_function(out)
    assert np.median(odd) < 0 < np.median(normal)
    assert odd.max() < np.quantile(normal, 0.5)
    assert set(np.unique(det.predict(out))) <= {-1, 1}


def test_round_trip_through_model_store(tmp_path):
    X, out = _data(1)
    det = create_detector("patch-knn", nu=0.1, groups=4).fit(X)
    model = AnomalyModel(encoder=EncoderIdentity("test", "toy", "none", DIM), detector=det)
    store = ModelStore(tmp_path)
    store.save(model, "m")
    loaded = store.load("m")
    assert type(loaded.detector) is DETECTORS["patch-knn"]
    Q = np.concatenate([X[:50], out])
    np.testing.assert_allclose(loaded.decision_function(Q), det.decision_function(Q), atol=1e-6, rtol=0)
    assert loaded.detector.get_params() == det.get_params()


def test_patch_knn_finds_the_changed_cell():
    X, _ = _data(5)
    det = create_detector("patch-knn", groups=4).fit(X)
    Y = X[:3].copy()
    Y[1, 12:18] += 4.0  # cell 2 of frame 1
    cells = det.cell_scores(Y)
    assert int(np.argmax(cells[1])) == 2
    s = det.decision_function(Y)
    assert s[1] < 0 and s[1] < min(s[0], s[2])


def test_patch_knn_rejects_a_dimension_not_divisible_by_cells():
    X, _ = _data()
    with pytest.raises(ValueError, match="multiple"):
        create_detector("patch-knn", groups=5).fit(X)


@pytest.mark.parametrize("name", ["gaussian", "ensemble", "attributes", "knn"])
def test_a_removed_detector_is_refused_naming_the_alternatives(name, tmp_path):
    assert name not in detector_names()
    with pytest.raises(ConfigError, match=rf"detector '{name}' was removed.*motion.*ocsvm.*patch-knn"):
        load_settings(overrides={"detector": name})
    with pytest.raises(ConfigError, match=rf"'{name}' was removed.*choose from .*ocsvm.*motion"):
        create_detector(name)
    # a model file saved before the removal: a clear error when it is loaded
    det = create_detector("patch-knn", groups=4).fit(_data()[0])
    store = ModelStore(tmp_path)
    store.save(AnomalyModel(encoder=EncoderIdentity("test", "toy", "none", DIM), detector=det), "old")
    path = store.path_for("old")
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files["model.json"] = files["model.json"].replace(b'"patch-knn"', f'"{name}"'.encode())
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    with pytest.raises(VlmAnomalyError, match=f"'{name}' was removed"):
        store.load("old")


def test_old_config_keys_of_removed_detectors_still_load(tmp_path, caplog):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("knn_k: 7\nensemble: [knn, gaussian]\ndetector:\n  detector: ocsvm\n  attr_k: 3\n"
                   "  attr_fused: [velocity]\n")
    s = load_settings(cfg)
    assert s.detector == "ocsvm" and not hasattr(s, "knn_k")
    assert "ignoring attr_fused, attr_k, ensemble, knn_k" in caplog.text
    with pytest.raises(ConfigError, match="features 'patches' was removed.*frame, tiles"):
        load_settings(overrides={"features": "patches"})
