"""The default detector against scikit-learn itself, and its error behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from vlm_anomaly.detectors import OneClassSVMDetector, create_detector, get_detector_class
from vlm_anomaly.errors import ConfigError, EncoderMismatchError, NotFittedError


def _data(seed: int = 0, n: int = 300, d: int = 24):
    rng = np.random.default_rng(seed)
    # correlated, unevenly scaled features, like real embeddings
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * rng.uniform(0.1, 3.0, d) + rng.normal(size=d)
    Y = np.concatenate([
        rng.normal(size=(40, d)) @ rng.normal(size=(d, d)),
        X[:10] + rng.normal(scale=5.0, size=(10, d)),
    ])
    return X, Y


def _sklearn_scores(X, Y, nu=0.1, gamma="scale"):
    scaler = StandardScaler().fit(X)
    svm = OneClassSVM(kernel="rbf", nu=nu, gamma=gamma).fit(scaler.transform(X))
    return svm.decision_function(scaler.transform(Y)), svm.predict(scaler.transform(Y))


@pytest.mark.parametrize(("seed", "nu", "gamma"), [(0, 0.1, "scale"), (1, 0.1, "scale"), (2, 0.3, "auto"),
                                                  (3, 0.05, 0.01)])
def test_decision_function_equals_scikit_learn(seed, nu, gamma):
    X, Y = _data(seed)
    det = OneClassSVMDetector(nu=nu, gamma=gamma)
    assert det.fit(X) is det
    expected, expected_labels = _sklearn_scores(X, Y, nu, gamma)
    np.testing.assert_allclose(det.decision_function(Y), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(det.decision_function(X), _sklearn_scores(X, X, nu, gamma)[0], atol=1e-6)
    assert np.array_equal(det.predict(Y), expected_labels)


def test_default_parameters_are_the_spec():
    det = OneClassSVMDetector()
    assert det.get_params() == {"nu": 0.1, "gamma": "scale"}


def test_scores_flag_outliers_and_keep_most_training_frames_normal():
    X, _ = _data(4)
    det = OneClassSVMDetector().fit(X)
    train_outlier_rate = float((det.predict(X) == -1).mean())
    assert train_outlier_rate <= 0.1 + 0.03  # nu bounds the training outlier fraction
    far = X[:20] + 50.0
    assert np.all(det.decision_function(far) < 0)
    assert np.all(det.predict(far) == -1)
    # one embedding as a 1-D vector works like a batch of one
    assert det.decision_function(X[0]).shape == (1,)


def test_state_round_trip_is_exact():
    X, Y = _data(5)
    det = OneClassSVMDetector(nu=0.2).fit(X)
    meta, arrays = det.get_state()
    again = OneClassSVMDetector.from_state(meta, {k: v.copy() for k, v in arrays.items()})
    assert again.get_params() == det.get_params()
    np.testing.assert_array_equal(again.decision_function(Y), det.decision_function(Y))


def test_not_fitted_raises():
    det = OneClassSVMDetector()
    X, _ = _data(6, n=10)
    for call in (det.decision_function, det.predict, det.score_samples):
        with pytest.raises(NotFittedError, match="fit"):
            call(X)
    with pytest.raises(NotFittedError):
        det.get_state()


def test_dimension_mismatch_raises():
    X, _ = _data(7, d=16)
    det = OneClassSVMDetector().fit(X)
    with pytest.raises(EncoderMismatchError, match="dimension 8 does not match the model's 16"):
        det.decision_function(np.zeros((3, 8)))
    with pytest.raises(EncoderMismatchError):
        det.predict(np.zeros((3, 32)))
    with pytest.raises(EncoderMismatchError, match="NaN"):
        det.decision_function(np.full((2, 16), np.nan))


def test_fit_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2"):
        OneClassSVMDetector().fit(np.zeros((1, 4)))


def test_registry_builds_by_name():
    det = create_detector("ocsvm", nu=0.25, gamma="scale", window=9)  # unknown params ignored
    assert isinstance(det, OneClassSVMDetector) and det.nu == 0.25
    assert get_detector_class("ocsvm") is OneClassSVMDetector
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        create_detector("nope")
