"""Mismatches between a model and the current encoder (kind, dimension, preprocessing) are
detected and explained, in the library and in the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.helpers import finish, start_cli
from vlm_anomaly.config import load_settings
from vlm_anomaly.detectors import OneClassSVMDetector
from vlm_anomaly.encoders.base import EncoderIdentity
from vlm_anomaly.errors import EncoderMismatchError
from vlm_anomaly.model import AnomalyModel
from vlm_anomaly.pipeline import Pipeline
from vlm_anomaly.store import ModelStore

from .conftest import assert_one_line_error


@pytest.fixture(scope="module")
def trained(trained_home) -> AnomalyModel:
    return ModelStore(trained_home / "models").load("m")


def variant(model: AnomalyModel, **identity_changes) -> AnomalyModel:
    return dataclasses.replace(model, encoder=dataclasses.replace(model.encoder, **identity_changes))


def model_of_dim(base: EncoderIdentity, dim: int) -> AnomalyModel:
    det = OneClassSVMDetector().fit(np.random.default_rng(0).normal(size=(40, dim)))
    return AnomalyModel(encoder=dataclasses.replace(base, dim=dim), detector=det)


def test_library_explains_encoder_kind_mismatch(trained, efficientnet, tmp_path):
    """A model of another encoder family, scored by a pipeline pinned to EfficientNet."""
    clip_model = model_of_dim(EncoderIdentity("openclip", "ViT-B-32", "openai", 512,
                                              preprocessing={"size": 224}), 512)
    pipe = Pipeline(load_settings(overrides={"detector": "ocsvm",
                                             "home": tmp_path, "encoder": "efficientnet"}), encoder=efficientnet)
    with pytest.raises(EncoderMismatchError) as exc:
        pipe.encoder_for(clip_model)
    msg = str(exc.value)
    assert "trained with encoder openclip:ViT-B-32/openai" in msg
    assert "backend 'efficientnet' != 'openclip'" in msg and "dim 1280 != 512" in msg
    # and the same model is fine with its own identity
    trained.check_encoder(efficientnet.identity)


def test_library_explains_dimension_mismatch(trained):
    with pytest.raises(EncoderMismatchError, match="dimension 512 but model .* expects 1280"):
        trained.decision_function(np.zeros((3, 512), np.float32))
    with pytest.raises(EncoderMismatchError, match="dim 768 != 1280"):
        trained.check_encoder(dataclasses.replace(trained.encoder, dim=768))


def test_library_explains_preprocessing_mismatch(trained, efficientnet):
    pre = dict(trained.encoder.preprocessing, size=256, mode="center-crop")
    other = dataclasses.replace(efficientnet.identity, preprocessing=pre)
    with pytest.raises(EncoderMismatchError) as exc:
        trained.check_encoder(other)
    msg = str(exc.value)
    assert "different preprocessing" in msg and "size 256 != 224" in msg and "mode 'center-crop' != 'letterbox'" in msg


@pytest.mark.slow
def test_cli_explains_all_three_kinds(trained, trained_home, tmp_path, clips):
    """``score`` with models whose encoder identity no longer matches: one explained line each."""
    store = ModelStore(tmp_path / "models")
    store.save(variant(trained, weights_sha256="0" * 64), "weights")
    store.save(model_of_dim(trained.encoder, 512), "dim")
    store.save(variant(trained, preprocessing=dict(trained.encoder.preprocessing, size=256)), "prep")
    env = {"VLM_ANOMALY_MODELS_DIR": str(store.root), "VLM_ANOMALY_EMBEDDING_CACHE": "false"}
    expected = {
        "weights": ["trained with encoder efficientnet", "different weights file"],
        "dim": ["dim 1280 != 512"],
        "prep": ["different preprocessing", "size 224 != 256"],
    }
    procs = {name: start_cli("score", name, str(clips["test"]), **env) for name in expected}
    for name, proc in procs.items():
        rc, out, err = finish(proc)
        assert_one_line_error(rc, err, *expected[name])
