"""Event hysteresis on synthetic score sequences: one incident gives one event."""

import numpy as np
import pytest

from vlm_anomaly.detectors import CausalSmoother
from vlm_anomaly.errors import ConfigError
from vlm_anomaly.incidents import EventTracker, HysteresisConfig
from vlm_anomaly.smoothing import SpanSmoother

DT = 0.5  # seconds between samples


def run(scores, cfg, *, finish=True, fast=None, dt=DT):
    """(start, end) of the events; ``fast``: the faster score that ends events, sample by sample."""
    tr = EventTracker(cfg)
    events, open_start = [], None
    t = 0.0
    for i, s in enumerate(scores):
        t = i * dt
        for x in tr.update(t, s, None if fast is None else fast[i]):
            if x.kind == "start":
                open_start = x.start_time
            else:
                assert x.start_time == open_start
                events.append((x.start_time, x.end_time))
                open_start = None
    if finish:
        events += [(x.start_time, x.end_time) for x in tr.finish(t)]
    return events


CFG = HysteresisConfig(enter=-0.2, exit=-0.1, min_duration_s=1.0, cooldown_s=2.0)


def test_flickering_incident_gives_one_event():
    # normal, then an incident whose score flickers around the enter threshold
    scores = [0.1] * 6 + [-0.5, -0.15, -0.6, -0.18, -0.5, -0.7, -0.12, -0.5] + [0.1] * 10
    events = run(scores, CFG)
    assert events == [(3.0, 7.0)]  # starts at the first dip, ends where the score rose above exit


def test_short_dip_is_not_an_event():
    assert run([0.1] * 5 + [-0.9, -0.9] + [0.1] * 5, CFG) == []  # 0.5 s < min duration


def test_dip_during_cooldown_continues_the_event_and_later_dip_is_new():
    scores = (
        [0.1] * 4
        + [-0.5] * 4
        + [0.1] * 2
        + [-0.5] * 4  # gap 1 s < cool-down: same event
        + [0.1] * 8
        + [-0.5] * 4
        + [0.1] * 6
    )  # gap 4 s > cool-down: a second event
    events = run(scores, CFG)
    assert events == [(2.0, 7.0), (11.0, 13.0)]


def test_values_between_thresholds_neither_open_nor_close():
    # -0.15 is between enter (-0.2) and exit (-0.1): no event starts, a running one does not end
    assert run([-0.15] * 20, CFG) == []
    events = run([0.0] * 2 + [-0.5] * 4 + [-0.15] * 10 + [0.0] * 6, CFG)
    assert events == [(1.0, 8.0)]


def test_source_ending_mid_event_closes_it():
    events = run([0.0] * 2 + [-0.5] * 6, CFG)
    assert events == [(1.0, 3.5)]


def test_smoothed_noisy_incident_one_event():
    rng = np.random.default_rng(0)
    raw = np.concatenate(
        [rng.normal(0.2, 0.15, 40), rng.normal(-0.6, 0.3, 20), rng.normal(0.2, 0.15, 40)]
    )
    sm = CausalSmoother(5)
    events = run([sm.update(x) for x in raw], CFG)
    assert len(events) == 1
    start, end = events[0]
    assert 40 * DT <= start <= 40 * DT + 3 * DT  # causal smoothing lags by at most a few samples
    assert 60 * DT <= end <= 60 * DT + 5 * DT


def test_thresholds_from_settings_and_validation():
    from vlm_anomaly import load_settings

    cfg = HysteresisConfig.from_settings(load_settings(overrides={"detector": "ocsvm", "home": "/tmp"}).events, 0.0)
    assert cfg.enter < cfg.exit <= 0.0  # a dead band below the model's threshold
    s = load_settings(overrides={"detector": "ocsvm", "event_enter_threshold": -0.3, "event_exit_threshold": -0.1})
    assert HysteresisConfig.from_settings(s.events, 0.0) == HysteresisConfig(-0.3, -0.1, 1.0, 2.0)
    with pytest.raises(ConfigError):
        HysteresisConfig(enter=0.0, exit=-0.5)


def _smoothed(raw, dt, *, window=5, span_s=1.0):
    """The watcher's two signals: the model's window (opens events), about ``span_s`` (ends them)."""
    slow, fast = CausalSmoother(window), SpanSmoother(span_s, window, interval_s=dt)
    return [slow.update(x) for x in raw], [fast.update(i * dt, x) for i, x in enumerate(raw)]


def test_event_ends_on_the_fast_signal_not_after_the_slow_windows_lag():
    raw = [1.0] * 10 + [-3.0] * 12 + [1.0] * 15  # the incident: samples 10-21 (5.0-10.5 s)
    slow, fast = _smoothed(raw, DT)
    assert run(slow, CFG) == [(5.5, 12.5)]  # the 5-sample mean needs 4 normal samples to clear
    assert run(slow, CFG, fast=fast) == [(5.5, 11.5)]  # 1 s of normal samples: over


def test_both_signals_must_be_anomalous_to_open_an_event():
    low, normal = [-0.5] * 10, [0.0] * 10
    assert run(low, CFG, fast=normal) == []  # the slow window's lag alone opens nothing
    assert run(normal, CFG, fast=low) == []  # nor does the noisier fast signal alone
    assert run(low, CFG, fast=low) == [(0.0, 4.5)]


def test_event_closes_when_either_signal_is_back_to_normal():
    # a fast signal still low does not keep open an event the steady one has left (never longer)
    slow = [0.0] * 2 + [-0.5] * 6 + [0.0] * 8
    fast = [0.0] * 2 + [-0.5] * 10 + [0.0] * 4
    assert run(slow, CFG, fast=fast) == run(slow, CFG) == [(1.0, 4.0)]


def test_slow_signal_lag_after_an_event_does_not_open_a_second_one():
    # one sample a second (the fast signal is the raw score), a short cool-down: the 5-sample mean
    # is still far below the threshold for seconds after the event ended on the raw score
    cfg = HysteresisConfig(enter=-0.2, exit=-0.1, min_duration_s=1.0, cooldown_s=0.5)
    raw = [1.0] * 5 + [-10.0] * 5 + [1.0] * 10
    slow, fast = _smoothed(raw, 1.0)
    assert run(slow, cfg, dt=1.0) == [(5.0, 14.0)]
    assert run(slow, cfg, fast=fast, dt=1.0) == [(5.0, 10.0)]  # ended at 10 s, and nothing after


def test_fast_dip_during_cooldown_continues_the_event():
    raw = [1.0] * 4 + [-2.0] * 4 + [1.0] * 2 + [-2.0] * 4 + [1.0] * 10  # 1 s apart: one incident
    slow, fast = _smoothed(raw, DT)
    assert run(slow, CFG, fast=fast) == [(3.0, 7.5)]


def test_smoothed_noisy_incident_one_event_ending_soon():
    rng = np.random.default_rng(0)
    raw = np.concatenate(
        [rng.normal(0.2, 0.15, 40), rng.normal(-0.6, 0.3, 20), rng.normal(0.2, 0.15, 40)]
    )
    slow, fast = _smoothed(raw, DT)
    events = run(slow, CFG, fast=fast)
    assert len(events) == 1
    start, end = events[0]
    assert 40 * DT <= start <= 40 * DT + 3 * DT
    assert 60 * DT <= end <= 60 * DT + 2 * DT  # the 1 s window: two samples after the incident


def test_one_extreme_frame_right_after_a_gap_weighs_as_it_does_anywhere_else():
    """A frame scoring -20 among normal frames (+1.4, every 250 ms) makes a short event. Right after
    a gap, smoothing restarts, and that frame alone was the event's "smoothed" worst score (-20, an
    alert certainty of 0.99), against -2.88 for the same frame anywhere else: the worst score now
    comes from whole smoothing windows, as the threshold that opens events was calibrated on."""
    from vlm_anomaly.results import ScoreResult
    from vlm_anomaly.values import FrameScores, Gap

    t = np.r_[np.arange(20) * 0.25, 25.0 + np.arange(20) * 0.25]
    gap = Gap("cam.mp4", 4.75, 25.0, "frames missing", 0)

    def worst(at: int) -> float:
        scores = np.full(40, 1.4)
        scores[at] = -20.0
        res = ScoreResult.of(FrameScores("cam.mp4", np.arange(40), t, scores), model="m", threshold=0.0,
                             smoothing_window=5, interval_ms=250, gaps=[gap])
        [incident] = res.incidents()
        return incident.worst_score

    assert worst(30) == pytest.approx(-2.88)
    assert worst(20) == pytest.approx(worst(30))  # the first frame after the gap
