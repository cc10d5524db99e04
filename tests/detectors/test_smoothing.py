"""Score smoothing: centred for offline results, causal (trailing) for live use."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly.detectors import CausalSmoother, moving_average
from vlm_anomaly.smoothing import SpanSmoother, agreeing, span_window


def _naive(x, window, causal):
    out = []
    for i in range(len(x)):
        if causal:
            lo, hi = i - window + 1, i + 1
        else:
            lo = i - window // 2
            hi = lo + window
        out.append(np.mean(x[max(0, lo) : min(len(x), hi)]))
    return np.array(out)


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 9, 50])
@pytest.mark.parametrize("causal", [False, True])
def test_moving_average_matches_direct_mean(window, causal):
    x = np.random.default_rng(window).normal(size=37)
    np.testing.assert_allclose(moving_average(x, window, causal=causal), _naive(x, window, causal), atol=1e-12)


def test_centred_window_has_no_lag_and_causal_lags():
    x = np.zeros(11)
    x[5] = 5.0
    centred = moving_average(x, 5)
    assert centred[3:8].tolist() == [1.0] * 5 and centred[:3].sum() == 0 and centred[8:].sum() == 0
    causal = moving_average(x, 5, causal=True)
    assert causal[:5].sum() == 0 and causal[5:10].tolist() == [1.0] * 5 and causal[10] == 0


def test_edges_shrink_instead_of_padding():
    x = np.full(6, -2.0)
    np.testing.assert_allclose(moving_average(x, 5), x)
    np.testing.assert_allclose(moving_average(x, 5, causal=True), x)


def test_empty_and_single():
    assert moving_average(np.array([]), 5).shape == (0,)
    assert moving_average(np.array([3.0]), 5).tolist() == [3.0]


def test_causal_smoother_equals_causal_moving_average():
    x = np.random.default_rng(1).normal(size=40)
    sm = CausalSmoother(window=5)
    streamed = [sm.update(v) for v in x]
    np.testing.assert_allclose(streamed, moving_average(x, 5, causal=True), atol=1e-12)
    sm.reset()
    assert sm.update(7.0) == 7.0


@pytest.mark.parametrize(("interval_s", "expected"), [(0.1, 5), (0.25, 4), (0.5, 2), (1.0, 1), (2.0, 1), (0.0, 5)])
def test_span_window_is_about_the_span_in_samples_never_more_than_the_cap(interval_s, expected):
    assert span_window(1.0, interval_s, 5) == expected


@pytest.mark.parametrize("interval_s", [0.1, 0.25, 0.5, 1.0])
def test_span_smoother_is_the_causal_average_over_its_window(interval_s):
    x = np.random.default_rng(2).normal(size=30)
    sm = SpanSmoother(1.0, 5, interval_s=interval_s)
    got = [sm.update(i * interval_s, v) for i, v in enumerate(x)]
    np.testing.assert_allclose(got, moving_average(x, span_window(1.0, interval_s, 5), causal=True), atol=1e-12)


def test_span_smoother_learns_the_interval_from_timestamps_when_not_told():
    # every frame of a 4 fps source: 1 s is 4 samples, whatever the first sample's time
    sm = SpanSmoother(1.0, 5)
    x = np.arange(12, dtype=float)
    got = [sm.update(100.0 + i * 0.25, v) for i, v in enumerate(x)]
    assert sm.window == 4
    np.testing.assert_allclose(got[4:], moving_average(x, 4, causal=True)[4:])
    sm.reset()
    assert sm.update(200.0, 9.0) == 9.0 and sm.window == 1


def test_span_smoother_refuses_a_negative_span():
    with pytest.raises(ValueError, match="negative"):
        SpanSmoother(-1.0, 5)


def _expl(n: int) -> list[dict]:
    return [{"text": f"frame {i}"} for i in range(n)]


def test_a_flagged_frame_is_explained_by_the_worst_of_its_window_never_across_a_gap():
    scores = np.array([1.0, 1.0, -9.0, 1.0, 1.0, -2.0, -2.0, 1.0])  # a gap before frame 3
    ts = np.arange(8) * 0.5
    ts[3:] += 20.0
    joined = agreeing(scores, ts, _expl(8), 5)  # as if there were no gap
    assert joined[3]["text"] == "frame 2" and joined[3]["from_time"] == 1.0
    cut = agreeing(scores, ts, _expl(8), 5, breaks=[3])
    assert all(e["text"] != "frame 2" for e in cut[3:]), cut[3:]
    assert cut[2] == {"text": "frame 2"}  # the worst frame explains itself, unmarked
    assert cut[0]["text"] == "frame 2"  # before the gap: the window's worst frame, marked with its time
    normal = agreeing(scores, ts, _expl(8), 5, breaks=[3], threshold=-5.0)  # another model's threshold
    assert normal == _expl(8)
