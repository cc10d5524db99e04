"""Glue between the attribute scorer and the Pipeline: train/score with ``detector="attributes"``.

Why here and not in the pipeline: the pipeline's embedding path stays untouched; it hands over to
these two functions when the detector is the attribute scorer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..detectors import moving_average
from ..errors import InvalidVideoError
from ..model import AnomalyModel, TrainingVideo
from ..results import ScoreResult
from ..video import content_hash
from .detector import AttributeDetector
from .features import MotionConfig
from .scorer import AttributeConfig, AttributeScorer


def attribute_config(settings) -> AttributeConfig:
    """The attribute hyper-parameters from the settings (``attr_*`` fields)."""
    motion = MotionConfig(flow_method=settings.attr_flow_method, crop_size=settings.attr_crop_size)
    return AttributeConfig(motion=motion, fused=tuple(settings.attr_fused), k=settings.attr_k)


def _scorer(pipe, *, encoder, config=None, state=None, interval_ms: int | None = None) -> AttributeScorer:
    s = pipe.settings
    cache = Path(s.cache_path) / "attributes" if s.embedding_cache else None
    return AttributeScorer(encoder, config, state=state, interval_ms=s.interval_ms if interval_ms is None
                           else interval_ms, max_side=s.max_side, max_frames=s.max_frames, cache_dir=cache)


def _progress_cb(progress, sources: Sequence[str], interval_ms: int, max_frames: int, stage: str):
    from ..pipeline import expected_samples

    total = sum(expected_samples(src, interval_ms, max_frames) for src in sources)
    if progress:
        progress(0, total, stage)

    def cb(done: int) -> None:
        if progress:
            progress(done, max(total, done), stage)

    return cb, total


def fit_attribute_model(pipe, sources: Sequence[str | Path], *, progress=None,
                        names: Sequence[str] | None = None) -> AnomalyModel:
    """Extract attributes of the normal sources, fit the scorer, wrap it as an :class:`AnomalyModel`.

    ``names`` are what explanations call the training videos (default: their file names).
    """
    if not sources:
        raise InvalidVideoError("training needs at least one normal video or frame folder")
    s = pipe.settings
    enc = pipe.encoder
    if enc.groups != 1:
        from ..errors import ConfigError

        raise ConfigError("the attributes detector embeds whole frames and object crops: use features 'frame' "
                          f"(not {s.features!r})")
    scorer = _scorer(pipe, encoder=enc, config=attribute_config(s))
    srcs = [str(x) for x in sources]
    cb, _ = _progress_cb(progress, srcs, s.interval_ms, s.max_frames, "extracting attributes")
    feats, done = [], 0
    for src in srcs:
        base = done
        feats.append(scorer.extract(src, lambda n, base=base: cb(base + n)))
        done += feats[-1].n_frames
    scorer.fit_features(feats)
    names = [str(n) for n in names] if names is not None and len(names) == len(feats) else \
        [Path(f.source).name for f in feats]
    scorer.state.sources = names
    if progress:
        progress(done, done, "done")
    from ..encoders import build_prompts

    X = np.concatenate([f.frame_emb for f in feats])
    refs = np.concatenate([
        np.stack([np.full(f.n_frames, k), f.frame_indices, np.round(f.timestamps * 1000)], 1)
        for k, f in enumerate(feats)]).astype(np.int64)
    return AnomalyModel(
        encoder=enc.identity,
        detector=AttributeDetector.from_scorer(scorer, enc.dim),
        prompts=build_prompts(s.expected_objects) if enc.supports_text else [],
        expected_objects=list(s.expected_objects),
        videos=[TrainingVideo(name, content_hash(f.source), f.n_frames,
                              float(f.timestamps[-1]) if f.n_frames else 0.0) for name, f in zip(names, feats)],
        interval_ms=s.interval_ms,
        smoothing_window=s.smoothing_window,
        threshold=s.threshold,
        train_embeddings=X.astype(np.float16),
        train_refs=refs,
    )


def score_attribute_model(pipe, model: AnomalyModel, source: str | Path, *, progress=None, describe: bool = True,
                          threshold: float | None = None, interval_ms: int | None = None) -> ScoreResult:
    """Score one source with an attribute model: fused scores, explanations, descriptions."""
    enc = pipe.encoder_for(model)
    scorer = _scorer(pipe, encoder=enc, state=model.detector.state_,
                     interval_ms=model.interval_ms if interval_ms is None else interval_ms)
    t0 = time.perf_counter()
    cb, _ = _progress_cb(progress, [str(source)], scorer.interval_ms, scorer.max_frames, "scoring attributes")
    res = scorer.score_detailed(source, cb)
    t1 = time.perf_counter()
    descs = pipe.describe_embeddings(model, res.frame_embeddings, encoder=enc) if describe else []
    raw = np.asarray(res.scores, np.float64)
    return ScoreResult(
        source=str(source),
        model=model.name,
        frame_indices=res.frame_indices,
        timestamps=res.timestamps,
        raw_scores=raw,
        smoothed_scores=moving_average(raw, model.smoothing_window),
        threshold=model.threshold if threshold is None else threshold,
        smoothing_window=model.smoothing_window,
        descriptions=[d.text for d in descs],
        confidences=[d.confidence for d in descs],
        embeddings=res.frame_embeddings,
        timing={"extract_and_score_s": round(t1 - t0, 4), "frames": len(raw),
                "seconds_per_frame": round((t1 - t0) / max(1, len(raw)), 4)},
        explanations=res.explanations,
    )


def evaluation_scorer(settings) -> AttributeScorer:
    """``vlm-anomaly evaluate --detector attributes``: the scorer built from the settings."""
    from ..encoders import create_encoder
    from ..pipeline import Pipeline

    pipe = Pipeline(settings)
    enc = create_encoder(settings.encoder, **pipe._encoder_kwargs())
    scorer = _scorer(pipe, encoder=enc, config=attribute_config(settings))
    if settings.train_interval_ms is not None and settings.train_interval_ms != settings.interval_ms:
        scorer.interval_ms = settings.interval_ms
    return scorer
