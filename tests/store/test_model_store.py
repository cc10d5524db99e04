"""The named-model store: exact round trips, management, hostile names, atomic saves, mismatches."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import zipfile

import numpy as np
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.detectors import OneClassSVMDetector
from vlm_anomaly.errors import (
    CorruptModelError,
    EncoderMismatchError,
    InvalidModelNameError,
    ModelNotFoundError,
)
from vlm_anomaly.model import AnomalyModel, TrainingVideo
from vlm_anomaly.store import ModelStore


def _unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _model(identity, X: np.ndarray, *, keep_embeddings: bool = True) -> AnomalyModel:
    det = OneClassSVMDetector().fit(X)
    refs = np.stack([np.zeros(len(X)), np.arange(len(X)), np.arange(len(X)) * 500], 1).astype(np.int64)
    return AnomalyModel(
        encoder=identity,
        detector=det,
        prompts=["a person walking", "a printer"],
        expected_objects=["person", "printer"],
        videos=[TrainingVideo("normal.mp4", "ab" * 32, len(X), len(X) * 0.5)],
        interval_ms=500,
        smoothing_window=7,
        threshold=-0.05,
        train_embeddings=X.astype(np.float16) if keep_embeddings else None,
        train_refs=refs if keep_embeddings else None,
    )


@pytest.fixture(scope="module")
def eff_identity(efficientnet_encoder):
    return efficientnet_encoder.identity


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "outer" / "models")


def test_round_trip_reproduces_scores_and_metadata(store, eff_identity):
    X, Y = _unit_rows(80, 1280, 0), _unit_rows(30, 1280, 1)
    model = _model(eff_identity, X)
    path = store.save(model, "office-day")
    assert path == store.root.resolve() / "office-day.vlmodel"

    loaded = store.load("office-day")
    np.testing.assert_allclose(loaded.decision_function(Y), model.decision_function(Y), rtol=0, atol=1e-6)
    # and both equal scikit-learn fitted on the same data
    scaler, svm = model.detector._sklearn
    np.testing.assert_allclose(loaded.decision_function(Y), svm.decision_function(scaler.transform(Y)),
                               atol=1e-6)
    assert loaded.name == "office-day"
    assert loaded.encoder == eff_identity
    assert loaded.prompts == model.prompts and loaded.expected_objects == ["person", "printer"]
    assert loaded.videos == model.videos
    assert (loaded.interval_ms, loaded.smoothing_window, loaded.threshold) == (500, 7, -0.05)
    assert loaded.created == model.created
    assert loaded.train_embeddings.shape == (80, 1280)
    np.testing.assert_array_equal(loaded.train_refs, model.train_refs)
    raw, smooth, flags = loaded.score(Y)
    assert np.array_equal(flags, smooth < -0.05)


def test_file_is_json_plus_plain_arrays(store, eff_identity):
    """No pickle anywhere: model.json plus .npy arrays that load with allow_pickle=False."""
    path = store.save(_model(eff_identity, _unit_rows(20, 1280, 2)), "plain")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("model.json"))
        for n in names:
            if n != "model.json":
                assert n.startswith("arrays/") and n.endswith(".npy")
                with zf.open(n) as fh:
                    np.load(fh, allow_pickle=False)
    assert meta["format"] == "vlm-anomaly-model" and meta["format_version"] == 1
    assert meta["encoder"]["backend"] == "efficientnet" and meta["encoder"]["dim"] == 1280
    assert meta["encoder"]["weights_sha256"] == eff_identity.weights_sha256
    assert meta["encoder"]["preprocessing"]["mode"] == "letterbox"
    assert meta["detector"]["name"] == "ocsvm" and meta["detector"]["params"] == {"nu": 0.1, "gamma": "scale"}
    assert meta["training"]["videos"][0]["sha256"] == "ab" * 32
    assert meta["training"]["interval_ms"] == 500 and meta["created"]


def test_list_show_rename_delete(store, eff_identity):
    assert store.list() == []
    store.save(_model(eff_identity, _unit_rows(20, 1280, 3)), "beta")
    store.save(_model(eff_identity, _unit_rows(30, 1280, 4)), "alpha")
    rows = store.list()
    assert [r.name for r in rows] == ["alpha", "beta"]
    assert rows[0].encoder == "efficientnet:efficientnet-lite0/imagenet"
    assert (rows[0].detector, rows[0].frames, rows[0].videos) == ("ocsvm", 30, 1)
    assert rows[0].size_bytes == (store.root / "alpha.vlmodel").stat().st_size

    info = store.show("alpha")
    assert info["name"] == "alpha" and info["training"]["frames"] == 30
    assert info["arrays"]["detector.mean"] == [1280]
    assert info["file"].endswith("alpha.vlmodel")

    Y = _unit_rows(5, 1280, 9)
    before = store.load("alpha").decision_function(Y)
    store.rename("alpha", "gamma")
    assert store.names() == ["beta", "gamma"]
    assert store.load("gamma").name == "gamma"
    np.testing.assert_array_equal(store.load("gamma").decision_function(Y), before)
    with pytest.raises(ModelNotFoundError):
        store.load("alpha")
    with pytest.raises(InvalidModelNameError, match="already exists"):
        store.rename("gamma", "beta")
    with pytest.raises(ModelNotFoundError):
        store.rename("alpha", "delta")

    store.delete("beta")
    assert store.names() == ["gamma"]
    with pytest.raises(ModelNotFoundError, match="no model named 'beta'"):
        store.delete("beta")
    with pytest.raises(ModelNotFoundError):
        store.show("beta")


def test_save_without_overwrite_keeps_existing(store, eff_identity):
    first = _model(eff_identity, _unit_rows(20, 1280, 5))
    store.save(first, "m")
    with pytest.raises(InvalidModelNameError, match="already exists"):
        store.save(_model(eff_identity, _unit_rows(20, 1280, 6)), "m", overwrite=False)
    Y = _unit_rows(4, 1280, 7)
    np.testing.assert_array_equal(store.load("m").decision_function(Y), first.decision_function(Y))


def test_a_model_deleted_while_it_learnt_footage_is_not_brought_back(store, eff_identity):
    """Marking footage normal loads a model, learns for seconds to minutes, then saves it: a
    delete in between (another client, the dashboard) must stay a delete."""
    store.save(_model(eff_identity, _unit_rows(20, 1280, 5)), "m")
    changed = store.load("m")  # ... the learning happens here ...
    store.delete("m")
    with pytest.raises(ModelNotFoundError, match="'m' was deleted meanwhile"):
        store.save(changed, "m", update=True)
    assert not store.exists("m") and [i.name for i in store.list()] == []


HOSTILE = ["../x", "a/b", "", "/tmp/evil", "/etc/passwd", "a\0b", "x" * 200, ".hidden", "..", ".",
           "a\\b", "a b", "name\n", "-rf", "m\u00e9t\u00e9o", "../../outer/escaped"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_rejected_and_nothing_written_outside(tmp_path, store, eff_identity, name):
    model = _model(eff_identity, _unit_rows(10, 1280, 8), keep_embeddings=False)
    store.save(model, "good")
    before = sorted(p for p in tmp_path.rglob("*"))

    for action in (
        lambda: store.save(model, name),
        lambda: store.load(name),
        lambda: store.show(name),
        lambda: store.delete(name),
        lambda: store.rename("good", name),
        lambda: store.rename(name, "other"),
        lambda: store.path_for(name),
    ):
        with pytest.raises(InvalidModelNameError, match="invalid model name"):
            action()
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert store.names() == ["good"]


def test_save_is_atomic_when_the_write_fails_midway(store, eff_identity):
    """A save that dies while writing (file size limit hit) leaves the previous model intact."""
    old = _model(eff_identity, _unit_rows(20, 1280, 10), keep_embeddings=False)
    store.save(old, "site")
    old_size = (store.root / "site.vlmodel").stat().st_size
    big = _model(eff_identity, _unit_rows(20, 1280, 11))
    big.train_embeddings = _unit_rows(1500, 1280, 11).astype(np.float16)  # ~4 MB
    big.train_refs = np.zeros((1500, 3), np.int64)

    limit = max(old_size * 4, 256 * 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(OSError):
            store.save(big, "site")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)

    Y = _unit_rows(6, 1280, 12)
    np.testing.assert_array_equal(store.load("site").decision_function(Y), old.decision_function(Y))
    assert sorted(os.listdir(store.root)) == [".lock", "site.vlmodel"], "temp file left behind"
    # and a normal save afterwards replaces it
    store.save(big, "site")
    np.testing.assert_array_equal(store.load("site").decision_function(Y), big.decision_function(Y))
    assert sorted(os.listdir(store.root)) == [".lock", "site.vlmodel"]


def test_truncated_model_file_is_reported_not_loaded(store, eff_identity):
    path = store.save(_model(eff_identity, _unit_rows(20, 1280, 13)), "cut")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptModelError, match="cut.vlmodel"):
        store.load("cut")
    assert store.names() == []  # listed models skip the broken file


# -- encoder mismatch -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def both_embeddings(scene_embeddings):
    return scene_embeddings("efficientnet_encoder")[1], scene_embeddings("clip_encoder")[1]


def test_model_rejects_embeddings_of_another_encoder(store, efficientnet_encoder, clip_encoder,
                                                     both_embeddings):
    eff_emb, clip_emb = both_embeddings
    store.save(_model(efficientnet_encoder.identity, eff_emb), "eff")
    store.save(_model(clip_encoder.identity, clip_emb), "clip")
    eff_model, clip_model = store.load("eff"), store.load("clip")

    with pytest.raises(EncoderMismatchError, match=r"dimension 512 .* expects 1280 \(efficientnet"):
        eff_model.decision_function(clip_emb)
    with pytest.raises(EncoderMismatchError, match=r"dimension 1280 .* expects 512 \(openclip:ViT-B-32"):
        clip_model.score(eff_emb)
    with pytest.raises(EncoderMismatchError, match="trained with encoder efficientnet"):
        eff_model.check_encoder(clip_encoder.identity)
    with pytest.raises(EncoderMismatchError, match="trained with encoder openclip:ViT-B-32/none"):
        clip_model.check_encoder(efficientnet_encoder.identity)
    # the matching encoder passes
    eff_model.check_encoder(efficientnet_encoder.identity)
    assert eff_model.decision_function(eff_emb).shape == (len(eff_emb),)


def test_same_dimension_but_other_weights_or_preprocessing_is_a_mismatch(efficientnet_encoder):
    ident = efficientnet_encoder.identity
    other_weights = dataclasses.replace(ident, weights_sha256="0" * 64)
    with pytest.raises(EncoderMismatchError, match="different weights file"):
        ident.check_compatible(other_weights)
    other_prep = dataclasses.replace(ident, preprocessing={**ident.preprocessing, "size": 256})
    with pytest.raises(EncoderMismatchError, match="different preprocessing"):
        ident.check_compatible(other_prep)


def test_pipeline_with_another_encoder_refuses_to_score(tmp_path, normal_video, clip_encoder,
                                                        efficientnet_encoder, both_embeddings):
    """A model trained with EfficientNet, loaded by a pipeline pinned to OpenCLIP: clear error, no work."""
    settings = load_settings(overrides={"detector": "ocsvm",
                                        "home": tmp_path, "encoder": "openclip", "clip_pretrained": "none"})
    pipe = Pipeline(settings, encoder=clip_encoder)
    pipe.store.save(_model(efficientnet_encoder.identity, both_embeddings[0]), "eff")
    with pytest.raises(EncoderMismatchError, match="trained with encoder efficientnet:efficientnet-lite0"):
        pipe.score("eff", normal_video)
    assert not (tmp_path / "cache" / "embeddings").exists()  # nothing was decoded or cached
