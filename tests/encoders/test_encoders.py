"""Both encoders through the one interface: shape, dtype, unit length, batching, whole-view input."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly.encoders import Preprocessing
from vlm_anomaly.encoders.efficientnet import imagenet_labels

ENCODERS = [("efficientnet_encoder", 1280), ("clip_encoder", 512)]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("fixture", "dim"), ENCODERS)
def test_embeddings_are_unit_float32_rows(scene_embeddings, scene_frames, fixture, dim):
    enc, emb = scene_embeddings(fixture)
    assert emb.shape == (len(scene_frames), dim) and enc.dim == dim
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(emb))
    assert enc.encode([]).shape == (0, dim)
    # frames of a moving scene are similar but not identical
    assert 0.5 < _cos(emb[0], emb[-1]) < 0.99999


@pytest.mark.parametrize(("fixture", "dim"), ENCODERS)
def test_batched_equals_one_by_one(scene_embeddings, scene_frames, fixture, dim):
    enc, batched = scene_embeddings(fixture)  # one batch of 5 (batch_size 16)
    saved = enc.batch_size
    try:
        enc.batch_size = 2  # 3 frames -> batches of 2 and 1
        in_pairs = enc.encode(scene_frames[:3])
    finally:
        enc.batch_size = saved
    single = np.concatenate([enc.encode([img]) for img in scene_frames[:3]])
    np.testing.assert_allclose(batched[:3], single, atol=1e-4)
    np.testing.assert_allclose(in_pairs, single, atol=1e-4)


@pytest.mark.parametrize(("fixture", "dim"), ENCODERS)
def test_accepts_grey_and_rgba_frames(scene_embeddings, scene_frames, fixture, dim):
    enc, emb = scene_embeddings(fixture)
    grey = scene_frames[0].mean(axis=2).astype(np.uint8)
    rgba = np.dstack([scene_frames[0], np.full(grey.shape, 255, np.uint8)])
    out = enc.encode([grey, rgba])
    assert out.shape == (2, dim)
    np.testing.assert_allclose(out[1], emb[0], atol=1e-4)  # alpha is dropped


# -- preprocessing keeps the whole view ------------------------------------------------------

def _white_corners(h: int, w: int, s: int = 24) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:s, :s] = 255
    img[-s:, -s:] = 255
    return img


@pytest.mark.parametrize(("fixture", "dim"), ENCODERS)
def test_letterbox_keeps_corner_markers(request, fixture, dim):
    """A wide 320x240 frame: corners a centre crop would cut off are in the model input."""
    prep: Preprocessing = request.getfixturevalue(fixture).preprocess
    assert prep.mode == "letterbox"
    s = prep.size
    x = prep([_white_corners(240, 320)])
    assert x.shape == (1, 3, s, s) and x.dtype == np.float32
    white = (1.0 - np.asarray(prep.mean)) / np.asarray(prep.std)
    black = (0.0 - np.asarray(prep.mean)) / np.asarray(prep.std)
    scale = s / 320
    top = round((s - 240 * scale) / 2)  # image rows start here; above is padding
    m = int(24 * scale) - 2  # marker size in the input, minus resampling edge
    tl = x[0, :, top + 1 : top + m, 1:m]
    br = x[0, :, s - top - m : s - top - 1, s - m : s - 1]
    for c in range(3):
        np.testing.assert_allclose(tl[c], white[c], atol=0.05)
        np.testing.assert_allclose(br[c], white[c], atol=0.05)
        # the middle of the frame is black, the letterbox bands are the (normalised) mean
        assert abs(x[0, c, s // 2, s // 2] - black[c]) < 0.05
        assert np.abs(x[0, c, : top - 1]).max() < 0.02 and np.abs(x[0, c, s - top + 1 :]).max() < 0.02


def test_letterbox_portrait_frame_pads_the_sides(efficientnet_encoder):
    prep = efficientnet_encoder.preprocess
    x = prep([_white_corners(320, 120)])
    s = prep.size
    left = round((s - 120 * s / 320) / 2)
    assert np.abs(x[0, :, :, : left - 1]).max() < 0.02  # padding band
    assert x[0, :, 2:10, left + 2 : left + 6].min() > 0.9  # marker at the top-left of the image


@pytest.mark.parametrize(("fixture", "dim"), ENCODERS)
def test_corner_marker_changes_the_embedding(scene_embeddings, scene_frames, fixture, dim):
    enc, emb = scene_embeddings(fixture)
    marked = scene_frames[0].copy()
    marked[:40, :40] = (255, 255, 0)  # top-left corner only
    assert _cos(emb[0], enc.encode([marked])[0]) < 1 - 1e-4


# -- EfficientNet specifics ------------------------------------------------------------------

def test_efficientnet_identity(efficientnet_encoder):
    ident = efficientnet_encoder.identity
    assert (ident.backend, ident.model, ident.pretrained, ident.dim) == (
        "efficientnet", "efficientnet-lite0", "imagenet", 1280)
    assert len(ident.weights_sha256) == 64
    assert ident.preprocessing == efficientnet_encoder.preprocess.as_dict()
    assert not efficientnet_encoder.supports_text


def test_efficientnet_describe_gives_imagenet_labels(scene_embeddings):
    enc, emb = scene_embeddings("efficientnet_encoder")
    descs = enc.describe(emb[:2], top_k=4)
    labels = set(imagenet_labels())
    assert len(labels) == 1000 and len(descs) == 2
    for d in descs:
        assert len(d.labels) == 4 and set(d.labels) <= labels
        assert list(d.probs) == sorted(d.probs, reverse=True)
        assert 0 < sum(d.probs) <= 1 + 1e-6
        assert d.text == d.labels[0] and d.confidence == d.probs[0]


