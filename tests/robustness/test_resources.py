"""Resources: limits are configurable and enforced, long videos are scored in constant memory,
and a cache that cannot be written degrades to "no cache" with a warning, not a failure."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from vlm_anomaly.config import load_settings
from vlm_anomaly.errors import ConfigError, StorageError, VideoTooLongError
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.store import ModelStore
from vlm_anomaly.synthetic import write_video

from .workers import big_model


def test_limits_are_settings_with_validation(monkeypatch):
    s = load_settings(overrides={"detector": "ocsvm",
                                 "max_upload_mb": 10, "max_duration_s": 90, "max_frames": 500, "max_side": 1280})
    assert (s.max_upload_mb, s.max_duration_s, s.max_frames, s.max_side) == (10, 90, 500, 1280)
    monkeypatch.setenv("VLM_ANOMALY_MAX_DURATION_S", "30")
    assert load_settings().max_duration_s == 30
    for bad in ({"max_upload_mb": -1}, {"max_duration_s": -5}, {"max_frames": -1}, {"max_side": -2}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_settings(overrides=bad)


def test_too_long_video_is_refused_before_any_encoder_is_built(tmp_path, clips):
    """The limit is checked first: the (here unavailable) CLIP encoder is never even built."""
    s = load_settings(overrides={"detector": "ocsvm", "home": tmp_path, "max_duration_s": 1, "encoder": "openclip",
                                 "clip_pretrained": "openai"})
    with pytest.raises(VideoTooLongError, match="over the limit of 1 s"):
        Pipeline(s).fit([clips["normal1"]])


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> dict[int, Path]:
    d = tmp_path_factory.mktemp("long")
    return {sec: write_video(d / f"long{sec}.mp4", seconds=sec, fps=25, size=(320, 240), seed=1)
            for sec in (20, 80)}


@pytest.mark.slow
def test_long_video_is_scored_in_constant_memory(zygote, trained_home, long_videos, corpus):
    """Peak RSS of scoring an 80 s video (2000 frames decoded) is within a fixed bound of a 20 s one;
    an 8K video downscaled at decode time (max_side) stays within a sane bound too."""
    peaks = {}
    for sec, video in long_videos.items():
        runs = []
        for _ in range(2):  # peak RSS varies by ~30 MB between identical runs (allocator, threads): take the lower
            e = zygote.run("score_memory", home=str(trained_home), model="m", video=str(video), interval_ms=1000)
            assert e["frames"] == sec
            runs.append(e["peak_mb"])
        peaks[sec] = min(runs)
    eight_k = next(c.path for c in corpus if c.name == "8K video")
    e8 = zygote.run("score_memory", home=str(trained_home), model="m", video=str(eight_k), interval_ms=0)
    growth = peaks[80] - peaks[20]
    print(f"\npeak RSS scoring 20 s: {peaks[20]:.0f} MB, 80 s: {peaks[80]:.0f} MB "
          f"(growth {growth:+.1f} MB for 4x length); 8K (2 frames, max_side 1920): {e8['peak_mb']:.0f} MB")
    assert growth < 60, peaks  # keeping the 1500 extra decoded 320x240 frames would add 345 MB
    assert peaks[80] < 2500
    assert e8["peak_mb"] - peaks[20] < 600


@pytest.mark.slow
def test_read_only_cache_degrades_to_no_cache(zygote, trained_home, clips, tmp_path):
    """A cache folder the process may not write to: scoring works, with one warning.

    The worker keeps its user (whoever may read this checkout) and only gives up root's licence to
    write anywhere, so the test does not depend on who may enter the folder it was cloned into."""
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    cache = home / "cache"
    (cache / "embeddings").mkdir(parents=True)
    for p in (cache, cache / "embeddings"):
        os.chmod(p, 0o555)
    e = zygote.run("degraded_cache", home=str(home), cache_dir=str(cache), model="m",
                   video=str(clips["test"]), obey_permissions=True)
    assert e["cache_writable"] is False  # the premise: this process really cannot write there
    assert e["frames"] == 6 and e["same"] and not e["from_cache"]
    assert any("embedding cache disabled" in w for w in e["warnings"]), e["warnings"]
    assert not list((cache / "embeddings").iterdir())


def test_cache_path_that_is_a_file_degrades_to_no_cache(tmp_path, trained_home, clips, efficientnet, caplog):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    s = load_settings(overrides={"detector": "ocsvm",
                                 "home": trained_home, "cache_dir": blocker, "encoder": "efficientnet"})
    pipe = Pipeline(s, encoder=efficientnet)
    with caplog.at_level(logging.WARNING):
        r = pipe.score("m", clips["test"], describe=False)
        r2 = pipe.score("m", clips["test"], describe=False)
    assert r.n_frames == r2.n_frames == 6 and not r2.timing["from_cache"]
    assert sum("embedding cache disabled" in m.getMessage() for m in caplog.records) == 1


@pytest.mark.slow
def test_disk_full_degrades_cache_and_fails_saves_cleanly(zygote, trained_home, clips, tmp_path):
    """RLIMIT_FSIZE in a worker simulates a full disk: scoring still works without the cache;
    saving a model fails with StorageError and leaves the previous model intact."""
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    before = ModelStore(home / "models").path_for("m").read_bytes()
    e = zygote.run("degraded_cache", home=str(home), cache_dir=str(home / "cache"), model="m",
                   video=str(clips["test"]), fsize_limit=16 * 1024)
    assert e["frames"] == 6 and e["same"] and not e["from_cache"]
    assert any("embedding cache disabled" in w for w in e["warnings"]), e["warnings"]
    assert "cannot write" in e["save_error"] and "m.vlmodel" in e["save_error"] and "unchanged" in e["save_error"]
    store = ModelStore(home / "models")
    assert store.path_for("m").read_bytes() == before and store.load("m").encoder.dim == 1280
    assert not list((home / "models").glob(".*.tmp"))


def test_unwritable_model_store_is_a_clear_storage_error(tmp_path):
    blocker = tmp_path / "models"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="models"):
        ModelStore(blocker).save(big_model(0, frames=4, dim=8), "a")
    assert StorageError.status_code == 507
