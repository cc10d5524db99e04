"""Tiled embeddings: the whole view covered, small objects seen, saved models rebuild the same tiles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.encoders import encoder_for_identity
from vlm_anomaly.encoders.tiles import TiledEncoder, tile_boxes
from vlm_anomaly.errors import ConfigError
from vlm_anomaly.synthetic import render_frame


@pytest.mark.parametrize("w, h, rows, cols, overlap", [(360, 240, 2, 3, 0.25), (641, 479, 3, 3, 0.0),
                                                       (100, 700, 4, 1, 0.5)])
def test_tiles_cover_every_pixel_with_the_overlap_asked(w, h, rows, cols, overlap):
    boxes = tile_boxes(w, h, rows, cols, overlap)
    assert len(boxes) == rows * cols
    cover = np.zeros((h, w), int)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1  # nothing at the edges is cropped away
    if cols > 1:
        (a0, _, a1, _), (b0, _, _, _) = boxes[0], boxes[1]
        assert (a1 - b0) / (a1 - a0) == pytest.approx(overlap, abs=0.02)


def test_a_small_object_moves_its_tile_more_than_the_whole_frame(efficientnet_encoder):
    enc = TiledEncoder(efficientnet_encoder, rows=2, cols=3, overlap=0.25)
    scene = render_frame(1.0, 640, 480)  # the synthetic street
    with_obj = scene.copy()
    cv2.rectangle(with_obj, (544, 394), (582, 440), (230, 20, 20), -1)  # a small red cart, bottom right
    a, b = enc.encode([scene, with_obj]).reshape(2, enc.groups, -1)
    cos = (a * b).sum(1)  # unit vectors per group
    moved = 1 - cos
    assert enc.groups == 7 and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
    assert moved[6] > 1.5 * moved[0], moved  # tile (row 1, col 2) sees the cart better than the whole frame
    assert moved[1:6].max() < 1e-3  # and only that tile changed


def test_tiled_model_round_trip_and_patch_knn_finds_the_intruder(tmp_path, normal_video, anomaly_video,
                                                                 anomaly_span):
    s = load_settings(overrides={"home": tmp_path, "encoder": "efficientnet", "features": "tiles",
                                 "tile_rows": 1, "tile_cols": 2, "tile_overlap": 0.5, "detector": "patch-knn",
                                 "interval_ms": 500})
    pipe = Pipeline(s)
    model = pipe.train("tiled", [normal_video])
    assert model.encoder.preprocessing["tiles"] == [1, 2, 0.5] and model.detector.groups == 3
    r = pipe.score("tiled", anomaly_video)
    worst = float(r.timestamps[int(np.argmin(r.smoothed_scores))])
    assert anomaly_span[0] <= worst <= anomaly_span[1] + 1.0
    # another process (default settings: whole-frame features) rebuilds the tiled encoder from the model
    fresh = Pipeline(load_settings(overrides={"detector": "ocsvm", "home": tmp_path, "encoder": "efficientnet"}))
    again = fresh.score("tiled", anomaly_video)
    np.testing.assert_allclose(again.raw_scores, r.raw_scores, atol=1e-4)
    assert isinstance(encoder_for_identity(model.encoder), TiledEncoder)


def test_bad_tile_settings_are_refused(efficientnet_encoder, tmp_path, normal_video):
    with pytest.raises(ConfigError):
        TiledEncoder(efficientnet_encoder, rows=1, cols=1)
    with pytest.raises(ConfigError):
        TiledEncoder(TiledEncoder(efficientnet_encoder), rows=2, cols=2)
    with pytest.raises(ConfigError):
        load_settings(overrides={"detector": "ocsvm", "tile_rows": 0})


def test_tiles_over_openclip_keep_text_and_descriptions(clip_encoder):
    """The CLIP path: tile embeddings for the detector, zero-shot text on the whole-frame part."""
    enc = TiledEncoder(clip_encoder, rows=1, cols=2, overlap=0.5)
    frames = [render_frame(t, 320, 240) for t in (0.0, 1.0)]
    x = enc.encode(frames)
    assert x.shape == (2, 3 * clip_encoder.dim) and enc.supports_text
    np.testing.assert_allclose(enc.whole(x), clip_encoder.encode(frames), atol=1e-5)
    labels = ["a person walking", "a car"]
    np.testing.assert_allclose(enc.text_similarity(x, labels), clip_encoder.text_similarity(enc.whole(x), labels))
    d = enc.describe(x, prompts=labels)
    assert len(d) == 2 and d[0].text in labels


@pytest.mark.parametrize("grid", [None, [2, 3], ["a", 3, 0.25], [0, 3, 0.25], [2, 3, 5.0], "2x3"])
def test_a_model_with_a_bad_tile_grid_is_refused_clearly(efficientnet_encoder, grid):
    from vlm_anomaly.encoders.identity import EncoderIdentity
    from vlm_anomaly.errors import VlmAnomalyError

    ident = TiledEncoder(efficientnet_encoder).identity.as_dict()
    ident["preprocessing"]["tiles"] = grid
    with pytest.raises(VlmAnomalyError):
        encoder_for_identity(EncoderIdentity.from_dict(ident))


def test_rebuilding_follows_the_model_not_the_current_settings(clip_encoder):
    """The model's features decide: current settings (features=tiles) do not leak into a CLIP rebuild,
    and a tiled model trained on a local CLIP weights file asks for that file like any CLIP model."""
    from vlm_anomaly.encoders.identity import EncoderIdentity
    from vlm_anomaly.errors import EncoderUnavailableError

    enc = encoder_for_identity(clip_encoder.identity, clip_pretrained="none", device="cpu", features="tiles")
    assert enc.groups == 1 and enc.identity == clip_encoder.identity
    tiled = TiledEncoder(clip_encoder, rows=1, cols=2, overlap=0.5).identity.as_dict()
    assert encoder_for_identity(EncoderIdentity.from_dict(tiled), device="cpu").groups == 3
    tiled["pretrained"] = "file"
    with pytest.raises(EncoderUnavailableError, match="--clip-weights"):
        encoder_for_identity(EncoderIdentity.from_dict(tiled), device="cpu")
