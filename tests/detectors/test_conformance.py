"""Every registered detector - the built-in ones, the plugins and the example registered from outside
the package - passes the same checks through the one contract: fit on normal videos, score a file,
save and load, score the same file as a live stream, refuse use before fit.

Nothing here asks what kind of detector it holds: the pipeline, the live engine and the evaluation
call every detector this way.
"""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.detectors import LearnsNormal, Scorer, detector_names, get_detector_class, learner
from vlm_anomaly.errors import CannotLearnError, NotFittedError
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.values import FrameScores
from vlm_anomaly.video import sample_frames

from . import example_video_detector  # noqa: F401 - registers "frame-diff" from outside the package

#: at 10 fps, the frame before each sample is the previous sample: live and offline motion measure
#: over the same gap
INTERVAL_MS = 100
SIZE = (160, 120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    train = [write_video(root / "a.mp4", seconds=4, size=SIZE), write_video(root / "b.mp4", seconds=4, size=SIZE,
                                                                             start_s=4)]
    test = write_video(root / "t.mp4", seconds=4, size=SIZE, start_s=8, anomaly_span=(1.5, 3.0))
    return train, test


@pytest.mark.parametrize("name", detector_names())
def test_every_detector_fits_scores_saves_loads_and_streams_alike(name, clips, efficientnet_encoder, tmp_path):
    train, test = clips
    s = load_settings(overrides={"home": tmp_path, "encoder": "efficientnet", "detector": name,
                                 "interval_ms": INTERVAL_MS, "threads": 2})
    pipe = Pipeline(s, encoder=efficientnet_encoder)
    cls = get_detector_class(name)

    # fit: the registered class, recording the encoder it embeds with (or none) and the sampling
    model = pipe.train("m", [str(p) for p in train])
    assert type(model.detector) is cls and model.detector.name == name
    enc = pipe.encoder_for(model)
    assert (model.encoder is None) == (enc is None)
    assert model.detector.n_features_in_ == (enc.dim if enc is not None else 0)
    assert model.interval_ms == INTERVAL_MS and [v.frames for v in model.videos] == [40, 40]

    # score a file: one finite score per sampled frame, in order
    res = pipe.score("m", str(test), describe=False)
    assert list(res.frame_indices) == list(range(40)) and np.all(np.isfinite(res.raw_scores))
    assert res.explanations == [] or len(res.explanations) == res.n_frames

    # save and load: the loaded model, in a fresh pipeline, scores the same
    fresh = Pipeline(s, encoder=efficientnet_encoder)
    loaded = fresh.store.load("m")
    np.testing.assert_allclose(fresh.score(loaded, str(test), describe=False).raw_scores, res.raw_scores,
                               rtol=1e-5, atol=1e-5)

    # stream: the same frames, in batches, through the scorer live monitoring uses
    scorer = fresh.scorer(loaded)
    assert isinstance(scorer, Scorer)
    frames = list(sample_frames(str(test), interval_ms=INTERVAL_MS, with_previous=scorer.needs_previous))
    parts = [scorer.score_frames(frames[k:k + 7]) for k in range(0, len(frames), 7)]
    assert all(isinstance(p, FrameScores) for p in parts)
    live = np.concatenate([p.scores for p in parts])
    # the first frame has no earlier one to measure motion against: offline may borrow its
    # neighbour's value, live cannot look ahead; every later frame scores the same
    assert len(live) == res.n_frames
    np.testing.assert_allclose(live[1:], res.raw_scores[1:], rtol=1e-4, atol=1e-4)

    # a fresh scorer has nothing to save yet
    with pytest.raises(NotFittedError):
        cls.scorer_for(pipe.context(pipe.detector_encoder(cls), INTERVAL_MS)).fitted()


def test_motion_alone_embeds_nothing_and_older_model_files_still_load(clips, tmp_path):
    """Motion without appearance records no encoder (none is built); a file saved before models could
    say so (a one-dimensional "motion" stand-in encoder and zero embeddings) loads and scores the same."""
    import dataclasses

    from vlm_anomaly.encoders import EncoderIdentity
    from vlm_anomaly.model import AnomalyModel

    train, test = clips
    s = load_settings(overrides={"home": tmp_path, "detector": "motion", "motion_appearance": False,
                                 "interval_ms": INTERVAL_MS, "threads": 2})
    pipe = Pipeline(s)
    model = pipe.train("new", [str(p) for p in train])
    assert model.encoder is None and model.train_embeddings is None and model.encoder_label == "none"
    res = pipe.score("new", str(test))
    assert res.embeddings is None and all(d for d in res.descriptions)  # words from the explanations
    assert pipe._encoders == {}  # no encoder was built

    @dataclasses.dataclass
    class Legacy(AnomalyModel):
        def to_state(self):
            meta, arrays = super().to_state()
            meta["encoder"] = EncoderIdentity(backend="motion", model="dis-cells", pretrained="", dim=1).as_dict()
            meta["detector"]["n_features_in"] = 1
            n = self.n_frames
            arrays["train_embeddings"] = np.zeros((n, 1), np.float16)
            arrays["train_refs"] = np.zeros((n, 3), np.int64)
            return meta, arrays

    pipe.store.save(Legacy(**{f.name: getattr(model, f.name) for f in dataclasses.fields(AnomalyModel)}), "old")
    old = pipe.store.load("old")
    assert old.encoder is None and old.train_embeddings is None
    assert [m.encoder for m in pipe.store.list() if m.name == "old"] == ["none"]
    np.testing.assert_allclose(pipe.score(old, str(test)).raw_scores, res.raw_scores, atol=1e-9)


@pytest.mark.parametrize("name", detector_names())
def test_every_detector_learns_footage_marked_normal_or_says_it_cannot(name, clips, efficientnet_encoder, tmp_path):
    """Through the contract's ``learner``: a detector that keeps normal examples learns the
    anomalous clip (it then scores it as more normal, also after save and load) and forgets it
    exactly; any other says it cannot learn without retraining."""
    train, test = clips
    s = load_settings(overrides={"home": tmp_path, "encoder": "efficientnet", "detector": name,
                                 "interval_ms": INTERVAL_MS, "threads": 2})
    pipe = Pipeline(s, encoder=efficientnet_encoder)
    model = pipe.train("m", [str(p) for p in train])
    before = pipe.score(model, str(test), describe=False).raw_scores
    scorer = pipe.scorer(model)
    if not isinstance(scorer, LearnsNormal) or name in ("ocsvm", "frame-diff"):
        with pytest.raises(CannotLearnError, match=f"detector '{name}' cannot learn without retraining"):
            learner(scorer, name).add_normal(str(test), key="k1", name="t.mp4")
        assert name in ("ocsvm", "frame-diff")
        return
    assert learner(scorer, name).add_normal(str(test), key="k1", name="t.mp4") == 40
    model.detector = scorer.fitted()
    pipe.store.save(model, "m")
    learnt = Pipeline(s, encoder=efficientnet_encoder).score("m", str(test), describe=False).raw_scores
    assert learnt.min() > before.min() and (learnt < 0).sum() < (before < 0).sum()
    learner(scorer, name).remove_normal("k1")
    model.detector = scorer.fitted()
    pipe.store.save(model, "m")
    np.testing.assert_array_equal(Pipeline(s, encoder=efficientnet_encoder).score("m", str(test), describe=False)
                                  .raw_scores, before)
