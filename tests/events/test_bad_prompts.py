"""Open-vocabulary alerts: known-bad prompts scored by CLIP and fused with the one-class score."""

import logging

import numpy as np
import pytest

from vlm_anomaly import Pipeline, create_encoder, load_settings
from vlm_anomaly.events import EventStore, PromptAlarm, SourceWatcher, StoreSink
from vlm_anomaly.synthetic import render_frame, write_video

BAD = ["fire", "a person lying on the floor", "a fight"]


def test_image_only_encoder_skips_prompts_with_a_notice(caplog):
    enc = create_encoder("efficientnet")
    with caplog.at_level(logging.WARNING):
        assert PromptAlarm.create(enc, BAD) is None
    assert "image-only" in caplog.text
    assert PromptAlarm.create(enc, []) is None


@pytest.fixture(scope="module")
def clip_encoder():
    return create_encoder("openclip", clip_pretrained="none")  # random weights: the real code path


def test_clip_prompt_scores_and_fusion(clip_encoder):
    enc = clip_encoder
    frames = [render_frame(t, 160, 120, anomaly=t >= 1.0) for t in (0.0, 0.5, 1.0, 1.5)]
    emb = enc.encode(frames)
    alarm = PromptAlarm.create(enc, BAD + ["fire"], normal=["a person walking", "fire"])
    assert alarm.bad == BAD and alarm.normal == ["a person walking"]  # de-duplicated
    hits = alarm.score(emb)
    full = enc.text_similarity(emb, BAD + ["a person walking"])  # softmax over bad + normal
    np.testing.assert_allclose(hits.probs, full[:, :3].max(1), rtol=1e-6)
    assert hits.labels == [BAD[i] for i in full[:, :3].argmax(1)]
    raw = np.array([0.3, 0.2, -0.5, -0.6])
    np.testing.assert_allclose(alarm.fuse(raw, hits), raw - hits.probs)


def test_event_reports_the_prompt_that_fired(tmp_path, clip_encoder):
    normal = [
        write_video(tmp_path / "n.mp4", seconds=8, fps=5, size=(160, 120)),
        write_video(tmp_path / "n.avi", seconds=8, fps=5, size=(160, 120)),
    ]
    test = write_video(tmp_path / "t.mp4", seconds=8, fps=5, size=(160, 120), anomaly_span=(3, 6))
    s = load_settings(
        overrides={
            "home": tmp_path,
            "detector": "ocsvm",  # prompts fuse with frame embeddings; motion models embed nothing
            "encoder": "openclip",
            "clip_pretrained": "none",
            "interval_ms": 400,
            "alert_prompts": BAD,
            "alert_prompt_threshold": 0.0,
        }
    )
    pipe = Pipeline(s, encoder=clip_encoder)
    pipe.train("clip-street", normal)
    store = EventStore.from_settings(s)
    w = SourceWatcher(pipe, "clip-street", str(test), sinks=[StoreSink(store)], realtime=False)
    assert w.scorer.prompts is not None
    w.run()
    [ev] = store.list()
    assert ev.prompt in BAD and 0.0 < ev.prompt_score <= 1.0
    assert 2.5 <= ev.start_time <= 6.0 and ev.end_time >= 6.0
