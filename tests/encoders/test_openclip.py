"""The OpenCLIP path end to end with a random-initialised ViT-B-32 (same code as with real weights)."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.encoders import build_prompts
from vlm_anomaly.encoders.prompts import prompts_key
from vlm_anomaly.pipeline import EmbeddedVideo


@pytest.fixture(scope="module")
def clip_embedded(normal_video, scene_embeddings) -> EmbeddedVideo:
    """The five one-per-second frames of ``normal_video`` as an embedded video."""
    emb = scene_embeddings("clip_encoder")[1]
    n = len(emb)
    return EmbeddedVideo(str(normal_video), "0" * 64, np.arange(n) * 10, np.arange(n, dtype=float), emb)


def test_identity_of_random_init(clip_encoder):
    ident = clip_encoder.identity
    assert (ident.backend, ident.model, ident.pretrained, ident.dim) == ("openclip", "ViT-B-32", "none", 512)
    assert clip_encoder.supports_text
    assert clip_encoder.preprocess.size == 224 and ident.preprocessing["mode"] == "letterbox"


def test_text_embeddings_are_unit_rows(clip_encoder):
    t = clip_encoder.encode_text(["a photo of a person walking", "a photo of fire or smoke"])
    assert t.shape == (2, 512) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(t[0], t[1])


def test_describe_returns_top_k_prompts_with_probabilities(clip_encoder, clip_embedded):
    prompts = build_prompts(["person", "printer", "desk"])  # the set the pipeline test uses too
    descs = clip_encoder.describe(clip_embedded.embeddings, top_k=3, prompts=prompts)
    assert len(descs) == clip_embedded.n_frames
    for d in descs:
        assert len(d.labels) == 3 and set(d.labels) <= set(prompts) and len(set(d.labels)) == 3
        assert all(0 <= p <= 1 for p in d.probs)
        assert list(d.probs) == sorted(d.probs, reverse=True)
        assert sum(d.probs) <= 1 + 1e-6
    full = clip_encoder.describe(clip_embedded.embeddings[:1], top_k=len(prompts), prompts=prompts)[0]
    assert sorted(full.labels) == sorted(prompts)
    assert sum(full.probs) == pytest.approx(1.0, abs=1e-5)
    assert clip_encoder.describe(clip_embedded.embeddings[:0], prompts=prompts) == []


def test_prompt_embeddings_computed_once_and_cached_on_disk(clip_encoder, clip_cache_dir, clip_embedded):
    labels = build_prompts(["forklift", "pallet"])  # a prompt set no other test uses
    key = f"{clip_encoder.identity.key}-{prompts_key(labels)}"
    path = clip_cache_dir / "text" / f"{key}.npy"
    assert key not in clip_encoder._text_cache and not path.exists()

    first = clip_encoder.describe(clip_embedded.embeddings, prompts=labels)
    cached = clip_encoder._text_cache[key]
    assert cached.shape == (len(labels), 512)
    assert path.is_file()
    np.testing.assert_array_equal(np.load(path), cached)
    mtime = path.stat().st_mtime_ns

    second = clip_encoder.describe(clip_embedded.embeddings, prompts=labels)
    assert clip_encoder._text_cache[key] is cached, "second call recomputed the prompt embeddings"
    assert path.stat().st_mtime_ns == mtime
    assert second == first

    # a new process (empty memory cache) reads the file instead of running the text tower:
    # plant a recognisably different array and check that is what comes back
    planted = np.roll(cached, 1, axis=0)
    np.save(path, planted)
    del clip_encoder._text_cache[key]
    np.testing.assert_array_equal(clip_encoder.prompt_embeddings(labels), planted)


def test_pipeline_records_prompts_from_expected_objects(tmp_path, clip_encoder, clip_embedded, normal_video):
    settings = load_settings(overrides={"detector": "ocsvm",
                                        "home": tmp_path, "encoder": "openclip", "clip_pretrained": "none",
                                        "expected_objects": "person, printer,desk", "top_k": 2})
    pipe = Pipeline(settings, encoder=clip_encoder)
    model = pipe.fit([], embedded=[clip_embedded])
    assert model.expected_objects == ["person", "printer", "desk"]
    assert model.prompts == build_prompts(["person", "printer", "desk"])
    assert "a person using a printer" in model.prompts and "a desk" in model.prompts
    assert model.encoder == clip_encoder.identity

    descs = pipe.describe_embeddings(model, clip_embedded.embeddings)
    assert all(len(d.labels) == 2 and set(d.labels) <= set(model.prompts) for d in descs)

    pipe.store.save(model, "office")
    result = pipe.score("office", normal_video)
    assert len(result.descriptions) == result.n_frames > 0
    assert set(result.descriptions) <= set(model.prompts)
    assert all(0 < c <= 1 for c in result.confidences)
