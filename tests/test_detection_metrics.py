"""Frame metrics against scikit-learn, with the project's convention (higher score = more normal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from vlm_anomaly.detection_metrics import equal_error_rate, frame_metrics, parse_frame_labels
from vlm_anomaly.errors import VlmAnomalyError
from vlm_anomaly.results import ScoreResult


def _scores(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = rng.normal(size=n) - 1.2 * y  # anomalies score lower
    s[:40] = np.round(s[:40], 1)  # some ties
    return s, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ap_match_scikit_learn(seed):
    s, y = _scores(seed)
    m = frame_metrics(s, y)
    assert m.auc == pytest.approx(roc_auc_score(y, -s), abs=1e-12)
    assert m.ap == pytest.approx(average_precision_score(y, -s), abs=1e-12)
    assert (m.frames, m.anomalous) == (len(y), int(y.sum()))
    assert 0.7 < m.auc < 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_is_where_false_alarms_equal_misses(seed):
    s, y = _scores(seed)
    eer, thr = equal_error_rate(s, y)
    fpr, tpr, _ = roc_curve(y, -s)
    fnr = 1 - tpr
    # the EER lies between the ROC points where FPR - FNR changes sign
    i = int(np.argmax(fpr - fnr >= 0))
    assert min(fpr[i - 1], fnr[i]) - 1e-12 <= eer <= max(fpr[i], fnr[i - 1]) + 1e-12
    # flagging frames below the threshold gives rates close to the EER
    flagged = s < thr
    fa, miss = flagged[y == 0].mean(), (~flagged[y == 1]).mean()
    assert abs(fa - eer) < 0.03 and abs(miss - eer) < 0.03


def test_perfect_and_inverted_rankings():
    y = np.array([0, 0, 1, 1, 0])
    good = frame_metrics(np.array([1.0, 0.9, -1.0, -2.0, 0.8]), y)
    assert (good.auc, good.ap, good.eer) == (1.0, 1.0, 0.0)
    bad = frame_metrics(np.array([-1.0, -0.9, 1.0, 2.0, -0.8]), y)
    assert bad.auc == 0.0 and bad.eer == 1.0


def test_single_class_has_no_auc():
    m = frame_metrics(np.array([0.1, 0.2, 0.3]), np.array([1, 1, 1]))
    assert not m.defined and math.isnan(m.auc) and math.isnan(m.eer)
    assert m.as_dict()["auc"] is None


def test_single_class_has_no_roc_curve_and_no_warning():
    """``evaluate`` on test clips that are all normal: no curve to plot, and no sklearn warning
    printed among the command's output."""
    import warnings

    from vlm_anomaly.detection_metrics import roc_points

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fpr, tpr = roc_points(np.array([0.3, 0.1, 0.2]), np.zeros(3, int))
    assert len(fpr) == len(tpr) == 0


def test_bad_input_is_rejected_clearly():
    with pytest.raises(VlmAnomalyError, match="3 scores but 2 labels"):
        frame_metrics(np.zeros(3), np.zeros(2))
    with pytest.raises(VlmAnomalyError, match="0 .normal. or 1"):
        frame_metrics(np.zeros(2), np.array([0, 2]))
    with pytest.raises(VlmAnomalyError, match="NaN"):
        frame_metrics(np.array([0.0, np.nan]), np.array([0, 1]))


@pytest.mark.parametrize("text, name, expected", [
    ("[0, 0, 1, 1, 0]", None, [0, 0, 1, 1, 0]),
    (b"\xef\xbb\xbf0\n0\n1\n", "clip.mp4", [0, 0, 1]),  # BOM, one per line
    ("0,1, 1 0", None, [0, 1, 1, 0]),
    ('{"01": [0, 1], "02": [1, 1, 0]}', "/data/test/02", [1, 1, 0]),  # a dataset's test_labels.json
    ('{"only": [0, 1]}', "whatever.mp4", [0, 1]),
])
def test_labels_in_the_formats_users_have(text, name, expected):
    assert parse_frame_labels(text, name=name).tolist() == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("[0, 2]", "0 \\(normal\\) or 1"), ("yes no", "0 \\(normal\\) or 1"),
    ('{"01": [0], "02": [1]}', "none is named"), ("[0, 1", "not valid JSON"), (b"\xff\xfe\x00", "not text"),
    ("[]", "non-empty"), ('{"a": "0101"}', "list"),
])
def test_bad_labels_are_refused_clearly(text, message):
    with pytest.raises(VlmAnomalyError, match=message):
        parse_frame_labels(text, name="clip.mp4")


def test_result_is_rated_on_the_frames_it_scored():
    idx = np.array([0, 5, 10, 15, 20])
    smooth = np.array([1.0, 0.5, -1.0, -0.5, 0.8])
    r = ScoreResult("v.mp4", "m", idx, idx / 10, smooth, smooth, 0.0, 1)
    labels = np.zeros(25, int)
    labels[8:18] = 1  # source frames 8-17: scored frames 10 and 15
    assert r.frame_labels(labels).tolist() == [0, 0, 1, 1, 0]
    m = r.evaluate(labels)
    assert m.auc == 1.0 and m.anomalous == 2 and m.frames == 5
    with pytest.raises(VlmAnomalyError, match="one label per frame"):
        r.evaluate(labels[:20])


@pytest.mark.parametrize("mask, runs", [([], []), ([0, 0], []), ([1], [(0, 0)]), ([1, 1, 0, 1], [(0, 1), (3, 3)]),
                                        ([0, 1, 1, 1], [(1, 3)])])
def test_runs_of_anomalous_frames(mask, runs):
    from vlm_anomaly.results import true_runs

    assert true_runs(np.array(mask, bool)) == runs
    idx = np.arange(len(mask))
    smooth = np.where(np.array(mask, bool), -1.0, 1.0)
    r = ScoreResult("v.mp4", "m", idx, idx / 2, smooth, smooth, 0.0, 1)
    assert true_runs(r.labels) == runs
