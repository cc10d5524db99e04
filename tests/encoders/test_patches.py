"""Patch features (PatchCore-style) of the offline backbone, and their path through train/save/score."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly.config import load_settings
from vlm_anomaly.encoders import create_encoder, encoder_for_identity
from vlm_anomaly.errors import EncoderUnavailableError
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.synthetic import render_frame, write_frames


@pytest.fixture(scope="module")
def enc():
    return create_encoder("efficientnet", features="patches", batch_size=8)


def test_patch_grid_layout_and_identity(enc):
    assert enc.grid == (12, 18) and enc.channels == 152
    assert enc.dim == enc.groups * enc.channels == 216 * 152
    ident = enc.identity
    assert ident.model == "efficientnet-lite0-patches" and ident.preprocessing["features"] == "patches"
    frame = render_frame(0.0, 360, 240)
    x = enc.encode([frame, frame])
    assert x.shape == (2, enc.dim) and x.dtype == np.float32 and np.all(np.isfinite(x))
    np.testing.assert_allclose(x[0], x[1])
    # the whole-frame encoder has a different identity, so caches and models never mix them
    assert ident.key != create_encoder("efficientnet").identity.key
    assert encoder_for_identity(ident).identity == ident


def test_a_local_change_moves_the_cells_where_it_happens(enc):
    a = render_frame(0.0, 360, 240)
    b = a.copy()
    b[20:60, 250:320] = (250, 20, 20)  # top right: rows 20-60 of 240, columns 250-320 of 360
    fa, fb = (enc.encode([img])[0].reshape(*enc.grid, enc.channels) for img in (a, b))
    change = np.linalg.norm(fb - fa, axis=2)
    r, c = np.unravel_index(np.argmax(change), change.shape)
    assert r < 4 and c >= 11, (r, c)
    assert change[8:, :8].max() < 0.2 * change.max()  # far-away cells barely move


def test_patch_features_need_the_offline_backbone():
    with pytest.raises(EncoderUnavailableError, match="offline backbone"):
        create_encoder("openclip", features="patches", clip_pretrained="none")
    with pytest.raises(EncoderUnavailableError, match="unknown features"):
        create_encoder("efficientnet", features="tiles3x3")


def test_train_save_and_score_with_patches(tmp_path, enc):
    normal = write_frames(tmp_path / "normal", n=16, size=(180, 120))
    test = write_frames(tmp_path / "test", n=12, size=(180, 120), anomaly_frames=range(6, 12))
    settings = load_settings(overrides={"home": tmp_path / "home", "features": "patches",
                                        "detector": "patch-knn", "interval_ms": 0})
    pipe = Pipeline(settings, encoder=enc)
    model = pipe.train("patchy", [str(normal)])
    assert model.detector.groups == enc.groups
    # a fresh pipeline with default settings rebuilds the patch encoder from the saved model
    fresh = Pipeline(load_settings(overrides={"detector": "ocsvm", "home": tmp_path / "home", "interval_ms": 0}))
    result = fresh.score("patchy", str(test), describe=True)
    assert fresh.encoder.identity == enc.identity
    raw = result.raw_scores
    assert raw[6:].max() < raw[:6].min()
    assert result.descriptions == [""] * 12
