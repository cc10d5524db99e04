"""Fixtures for the dashboard tests: real clips, an isolated home folder, a real small model."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlm_anomaly.synthetic import write_video

CLIPS = {"normal_a": dict(seed=0), "normal_b": dict(seed=1), "intruder": dict(seed=0, anomaly_span=(2.5, 4.5))}


@pytest.fixture(scope="session")
def dash_clips(tmp_path_factory) -> dict[str, Path]:
    """6-second 320x240 clips (same bytes as the library tests' clips, so embeddings are cached)."""
    d = tmp_path_factory.getbasetemp() / "dash-clips"
    d.mkdir(exist_ok=True)
    out = {}
    for name, kw in CLIPS.items():
        p = d / f"{name}.mp4"
        if not p.exists():
            write_video(p, seconds=6, **kw)
        out[name] = p
    return out


@pytest.fixture(scope="module")
def dash_env(tmp_path_factory):
    """Point the app at a fresh home (models, training set) with the offline encoder, 500 ms sampling."""
    home = tmp_path_factory.mktemp("dash-home")
    env = {"VLM_ANOMALY_HOME": str(home), "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("VLM_ANOMALY_CONFIG", raising=False)
        yield home


@pytest.fixture(scope="module")
def trained(dash_env, dash_clips):
    """A model named 'office' trained (through the library) on a training set of the two normal clips."""
    from vlm_anomaly import load_settings
    from vlm_anomaly.store import TrainingSet
    from vlm_anomaly.ui import state

    s = load_settings()
    pipe = state.pipeline(s)
    ts = TrainingSet.for_settings(s)
    for clip in (dash_clips["normal_a"], dash_clips["normal_b"]):
        ts.add(pipe, clip)
    ts.train(pipe, "office")
    return "office"
