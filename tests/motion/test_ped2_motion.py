"""The default (motion) detector on real footage: UCSD Ped2 rendered as MP4 files, a few clips.

What a user does: record a few normal clips, export them as MP4, train, then score what the
camera streams - compressed differently, smaller, at another rate. These tests do exactly that
with Ped2 (train 01-04 as MP4 at 10 fps; test 02, where a cyclist rides in from frame 94) and
check what the user would: anomalous frames rank above normal ones, and the calibrated threshold
flags few normal frames, also on a re-encoded stream and on normal clips it never saw.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.synthetic import reencode


@pytest.fixture(scope="module")
def ped2_mp4(ped2_dir, tmp_path_factory):
    """Train 01-04 and test 02 as MP4 (MPEG-4 at 2 Mbit/s, 10 fps), test 02 labels, a trained pipeline."""
    d = tmp_path_factory.mktemp("ped2-mp4")
    train = [reencode(ped2_dir / "train" / c, d / f"train{c}.mp4", bit_rate=2_000_000)
             for c in ("01", "02", "03", "04")]
    test = reencode(ped2_dir / "test" / "02", d / "test02.mp4", bit_rate=2_000_000)
    labels = np.asarray(json.loads((ped2_dir / "test_labels.json").read_text())["02"])
    pipe = Pipeline(load_settings(overrides={"home": d / "home", "interval_ms": 0}))  # the default detector
    model = pipe.train("ped2-few", train)
    return {"dir": d, "pipe": pipe, "model": model, "test": test, "labels": labels, "ped2": ped2_dir}


def _check(result, labels, fps_ratio: int = 1):
    y = labels[np.clip(np.round(result.timestamps * 10).astype(int), 0, len(labels) - 1)]
    s = np.asarray(result.smoothed_scores)
    flagged = s < result.threshold
    return roc_auc_score(y, -s), flagged[y == 0].mean(), flagged[y == 1].mean()


def test_default_detector_is_motion_with_appearance_and_needs_no_network(ped2_mp4):
    """Offline (the suite runs with HF_HUB_OFFLINE=1), the regions' crops go through the offline
    backbone; the model records that encoder, and its appearance bank is non-empty."""
    model = ped2_mp4["model"]
    assert model.detector.name == "motion"
    assert model.encoder.backend == "efficientnet"
    st = model.detector.state_
    assert "appearance" in st.config.fused
    assert len(st.rows["appearance"]) == len(st.rows["object"]) > 0  # one crop per moving region
    assert 0 < model.extra["target_false_alarm"] < 0.5
    # what the training frames' moving regions look like is kept for "nearest normal frame"
    assert model.train_embeddings.shape == (model.n_frames, model.encoder.dim)


def test_few_mp4_clips_rank_the_cyclist_and_keep_normal_frames_quiet(ped2_mp4):
    r = ped2_mp4["pipe"].score("ped2-few", ped2_mp4["test"])
    auc, normal_flagged, anomalous_flagged = _check(r, ped2_mp4["labels"])
    assert auc >= 0.85
    assert normal_flagged <= 0.10
    assert anomalous_flagged >= 0.5  # the threshold is not simply "never alarm"
    # the description says what moved, not an ImageNet label
    worst = int(np.argmin(r.smoothed_scores))
    assert "moving object" in r.descriptions[worst]
    assert "faster than any normal object" in r.descriptions[worst] or "unusual" in r.descriptions[worst]


@pytest.mark.parametrize("variant", [
    dict(codec="libx264", options={"crf": "35", "preset": "ultrafast"}, scale=0.75),
    dict(codec="mpeg2video", bit_rate=300_000, scale=0.5),
    dict(codec="mjpeg", qscale=25, scale=0.5, fps=30, repeat=3),
], ids=["h264-crf35-0.75x", "mpeg2-300k-0.5x", "mjpeg-q25-0.5x-30fps"])
def test_codec_size_and_rate_shift(ped2_mp4, variant):
    """The live stream differs from the exports: other codec, strong compression, smaller, 30 fps."""
    ext = {"mpeg2video": ".mpg", "mjpeg": ".avi"}.get(variant["codec"], ".mp4")
    p = reencode(ped2_mp4["ped2"] / "test" / "02", ped2_mp4["dir"] / f"shift-{variant['codec']}{ext}", **variant)
    # score 10 samples per second, whatever the file's rate
    r = ped2_mp4["pipe"].score("ped2-few", p, interval_ms=100)
    auc, normal_flagged, anomalous_flagged = _check(r, ped2_mp4["labels"])
    assert auc >= 0.85
    assert normal_flagged <= 0.10
    assert anomalous_flagged >= 0.5


def test_unseen_normal_footage_is_flagged_near_the_target_rate(ped2_mp4):
    """Normal clips the model never saw (train 05-07), one re-encoded as H.264: few frames flagged."""
    pipe, d = ped2_mp4["pipe"], ped2_mp4["dir"]
    flagged, n = 0, 0
    for c, kw in (("05", {"bit_rate": 2_000_000}), ("06", {"codec": "libx264", "options": {"crf": "32"}}),
                  ("07", {"bit_rate": 2_000_000, "scale": 0.75})):
        p = reencode(ped2_mp4["ped2"] / "train" / c, d / f"normal{c}.mp4", **kw)
        r = pipe.score("ped2-few", p)
        flagged += int(np.sum(r.smoothed_scores < r.threshold))
        n += len(r.smoothed_scores)
    assert flagged / n <= 0.10


def test_known_anomaly_in_a_real_ped2_folder_ranks_above_its_normal_frames(ped2_dir, tmp_path):
    """Frame folders as they come (Ped2's JPEGs): the cyclist's frames score below every normal one."""
    pipe = Pipeline(load_settings(overrides={"home": tmp_path, "interval_ms": 0}))
    pipe.train("ped2-folders", [ped2_dir / "train" / c for c in ("01", "02", "03", "04")])
    r = pipe.score("ped2-folders", ped2_dir / "test" / "02")
    y = np.asarray(json.loads((ped2_dir / "test_labels.json").read_text())["02"])[r.frame_indices]
    s = r.smoothed_scores
    # the 20 lowest-scoring frames are all the cyclist's
    assert y[np.argsort(s)[:20]].all()
    assert roc_auc_score(y, -s) >= 0.9



def test_what_counts_as_moving_follows_the_scene_not_the_frame_rate(ped2_dir, tmp_path):
    """The same Ped2 frames as frame folders (played at 25 fps) and as 10 fps MP4s: in the MP4s the
    walkers cover 2.5x fewer frame heights per second. The speed floor learnt at fit follows them,
    so both models see about as many moving regions per frame (a fixed floor lost most walkers)."""
    from vlm_anomaly.motion import MotionScorer
    from vlm_anomaly.motion.scorer import MotionConfig

    clips = ("01", "02")
    folders = [str(ped2_dir / "train" / c) for c in clips]
    mp4s = [str(reencode(ped2_dir / "train" / c, tmp_path / f"train{c}.mp4", bit_rate=2_000_000)) for c in clips]
    config = MotionConfig(fused=("object", "shape"), augment=False)
    a = MotionScorer(config).fit(folders)
    b = MotionScorer(config).fit(mp4s)
    ratio = b.config.grid.moving_speed / a.config.grid.moving_speed
    assert 0.3 < ratio < 0.55, (a.config.grid.moving_speed, b.config.grid.moving_speed)

    def regions_per_frame(scorer) -> float:
        return len(scorer.state.rows["object"]) / sum(len(v.frame_indices) for v in scorer.train_videos)

    assert regions_per_frame(a) >= 3  # Ped2 shows several walkers in every frame
    assert regions_per_frame(b) == pytest.approx(regions_per_frame(a), rel=0.3)
