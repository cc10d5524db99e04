"""Event hysteresis on synthetic score sequences: one incident gives one event."""

import numpy as np
import pytest

from vlm_anomaly.detectors import CausalSmoother
from vlm_anomaly.errors import ConfigError
from vlm_anomaly.events import EventTracker, HysteresisConfig

DT = 0.5  # seconds between samples


def run(scores, cfg, *, finish=True):
    tr = EventTracker(cfg)
    events, open_start = [], None
    t = 0.0
    for i, s in enumerate(scores):
        t = i * DT
        for x in tr.update(t, s):
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
