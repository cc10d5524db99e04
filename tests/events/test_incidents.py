"""One definition of an incident: ``score`` (and the Test page and the demo, which show its result)
and ``watch`` (and the Live page, which runs the same watcher) report the same incidents for the
same file, with the shipped defaults (the motion detector, the event settings) but a 100 ms
sampling: on these 10 fps clips the frame before each live sample is then the previous sample, so
live and offline motion measure over the same gap and score every frame alike (at 500 ms, offline
motion measures between samples and live against the frame before each: other scores, not other
incident rules)."""

from __future__ import annotations

import json

import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.events import EventStore, SourceWatcher, StoreSink
from vlm_anomaly.incidents import EventBuilder, HysteresisConfig, replay


def _key(start, end, frames, worst):
    return (round(start, 3), round(end, 3), int(frames), round(worst, 5))


@pytest.fixture(scope="module")
def scored(tmp_path_factory, clips):
    normal, test = clips
    home = tmp_path_factory.mktemp("incidents")
    s = load_settings(overrides={"home": home, "interval_ms": 100})
    pipe = Pipeline(s)
    pipe.train("street", [str(p) for p in normal])
    return pipe, test, pipe.score("street", str(test), describe=False)


def test_score_and_watch_report_the_same_incidents(scored, anomaly_span):
    pipe, test, result = scored
    offline = [_key(i["start_time"], i["end_time"], i["frames"], i["worst_score"])
               for i in sorted(result.summary()["incidents"], key=lambda i: i["start_time"])]

    w = SourceWatcher(pipe, "street", str(test), sinks=[StoreSink(EventStore.from_settings(pipe.settings))],
                      realtime=False)
    assert w.run().status == "ended"
    live = [_key(r.start_time, r.end_time, r.frames, r.worst_score) for r in w.records]

    assert offline == live
    # and it is the intruder's incident
    assert len(live) == 1
    start, end = live[0][:2]
    assert anomaly_span[0] - 0.5 <= start <= anomaly_span[1] and end >= anomaly_span[1] - 0.5


def test_cli_score_reports_those_incidents(scored, run_cli, tmp_path):
    pipe, test, result = scored
    out = tmp_path / "r.json"
    r = run_cli("score", "street", str(test), "--json", str(out), home=pipe.settings.home)
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())["summary"]["incidents"]
    assert got == [i.as_dict() for i in sorted(result.incidents(), key=lambda i: i.worst_score)]
    assert "incidents, worst first" in r.stdout


def test_replay_follows_the_event_rules():
    """A dip shorter than the minimum duration is no incident; one long dip is one, ended on the
    short end window and kept through the cool-down."""
    cfg = HysteresisConfig(enter=0.0, exit=0.05, min_duration_s=1.0, cooldown_s=2.0)
    t = [i * 0.5 for i in range(40)]
    scores = [1.0] * 4 + [-3.0] * 1 + [1.0] * 8 + [-3.0] * 8 + [1.0] * 19
    got = replay(EventBuilder(cfg, window=1, end_span_s=1.0, interval_s=0.5), t, scores)
    assert [(i.start_time, i.end_time, i.frames) for i in got] == [(6.5, 10.5, 8)]
    assert got[0].worst_score == -3.0 and got[0].end_reason == "recovered"
