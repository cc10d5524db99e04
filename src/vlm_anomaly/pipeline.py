"""source → frame sampler → encoder → detector → results: the one path every interface calls.

The CLI, the dashboard and the REST API only collect options and show what comes back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .config import Settings, load_settings
from .detectors import BaseDetector, VideoContext, VideoScorer, create_detector, get_detector_class, moving_average
from .encoders import (
    Encoder,
    EncoderIdentity,
    build_prompts,
    encoder_for_identity,
    encoder_from_settings,
    encoder_options,
)
from .encoders.base import Description
from .encoders.null import NULL_IDENTITY
from .errors import InvalidModelNameError, InvalidVideoError, VlmAnomalyError
from .model import AnomalyModel, TrainingVideo
from .results import ScoreResult
from .store import CachedEmbeddings, EmbeddingCache, ModelStore
from .threads import configure_threads
from .values import EmbeddedVideo
from .video import Frame, batched, content_hash, prefetch, probe, sample_frames, source_kind

log = logging.getLogger(__name__)

#: progress callback: (frames done, frames expected or 0 if unknown, stage text)
Progress = Callable[[int, int, str], None]


def _noop(done: int, total: int, stage: str) -> None:
    pass


def expected_samples(source: str | Path, interval_ms: int, max_frames: int = 0) -> int:
    """Estimate of how many frames sampling will yield (for progress bars); 0 if unknown."""
    try:
        info = probe(source)
    except VlmAnomalyError:
        return 0
    if info.frame_count <= 0:
        return 0
    if interval_ms <= 0 or info.fps <= 0:
        n = info.frame_count
    else:
        last_t = (info.frame_count - 1) / info.fps  # the last frame starts here, not at duration_s
        n = int(math.floor((last_t + 1e-3) * 1000 / interval_ms)) + 1
        n = min(n, info.frame_count)
    return min(n, max_frames) if max_frames else n


class Pipeline:
    """Holds the settings, the encoder (built once) and the stores; runs train/score/describe.

    Example:
        >>> pipe = Pipeline(load_settings(overrides={"encoder": "efficientnet"}))  # doctest: +SKIP
        >>> model = pipe.train("office-day", ["normal1.mp4", "normal2.mp4"])  # doctest: +SKIP
        >>> result = pipe.score("office-day", "test.mp4")  # doctest: +SKIP
        >>> result.n_anomalies, result.anomaly_rate  # doctest: +SKIP
    """

    def __init__(self, settings: Settings | None = None, *, encoder: Encoder | None = None):
        self.settings = settings or load_settings()
        self._encoder = encoder
        self._own_encoders: dict[str, Encoder] = {}  # encoders detectors pick for themselves
        self.store = ModelStore(self.settings.models_path)
        self.cache = EmbeddingCache(self.settings.cache_path, enabled=self.settings.embedding_cache)
        self._configure_threads()

    def _configure_threads(self) -> None:
        self.threads = configure_threads(self.settings.threads)

    # -- encoders ---------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The configured encoder, built on first use."""
        if self._encoder is None:
            self._encoder = encoder_from_settings(self.settings)
        return self._encoder

    def detector_encoder(self, cls: type, identity: EncoderIdentity | None = None) -> Encoder:
        """The encoder a detector class fits with (or, given ``identity``, scores with): the
        configured one unless the detector picks its own; those are built once per pipeline."""
        es = cls.encoder_settings(self.settings)
        if es is self.settings:
            return self.encoder
        key = repr((sorted(encoder_options(es).items()), identity))
        if key not in self._own_encoders:
            self._own_encoders[key] = encoder_from_settings(es, identity)
        return self._own_encoders[key]

    def encoder_for(self, model: AnomalyModel) -> Encoder:
        """The encoder a model was trained with: the current one if it matches, else rebuilt."""
        if model.encoder == NULL_IDENTITY:  # the model embeds nothing
            return encoder_for_identity(NULL_IDENTITY)
        if type(model.detector).encoder_settings(self.settings) is not self.settings:
            return self.detector_encoder(type(model.detector), model.encoder)  # the detector's own
        if self._encoder is not None:
            try:
                model.check_encoder(self._encoder.identity)
                return self._encoder
            except VlmAnomalyError:
                if self.settings.encoder != "auto":
                    raise
        enc = encoder_from_settings(self.settings, model.encoder)
        self._encoder = enc
        return enc

    # -- embedding --------------------------------------------------------------------------
    def embed(
        self,
        sources: Sequence[str | Path],
        *,
        encoder: Encoder | None = None,
        progress: Progress | None = None,
        keep_frames: bool = False,
        interval_ms: int | None = None,
    ) -> list[EmbeddedVideo]:
        """Embed several sources as one stream of batches (no per-video reloads), cache-aware.

        Every source is checked (exists, opens, within the limits) before the encoder is built,
        so a bad path fails in a second, not after loading a model.
        """
        s = self.settings
        self.check_sources(sources)
        enc = encoder or self.encoder
        interval = s.interval_ms if interval_ms is None else interval_ms
        progress = progress or _noop
        results: list[EmbeddedVideo | None] = [None] * len(sources)
        todo: list[tuple[int, str, str, str]] = []
        for i, src in enumerate(sources):
            src = str(src)
            sha = content_hash(src)
            key = EmbeddingCache.key(sha, enc.cache_key, interval, s.max_side, s.max_frames,
                                     s.max_duration_s)
            hit = None if keep_frames else self.cache.get(key, enc.dim)
            if hit is not None:
                results[i] = EmbeddedVideo(src, sha, hit.indices, hit.timestamps, hit.embeddings, True)
            else:
                todo.append((i, src, sha, key))
        total = sum(expected_samples(src, interval, s.max_frames) for _, src, _, _ in todo)
        done = 0
        progress(0, total, "encoding")
        if todo:
            parts: dict[int, list] = {i: [[], [], [], []] for i, *_ in todo}

            def frames() -> Iterator[tuple[int, Frame]]:
                for i, src, _, _ in todo:
                    for f in sample_frames(src, interval_ms=interval, max_side=s.max_side,
                                           max_frames=s.max_frames, max_duration_s=s.max_duration_s):
                        yield i, f

            for batch in batched(prefetch(frames(), maxsize=max(2 * s.batch_size, 32)), s.batch_size):
                emb = enc.encode([f.image for _, f in batch])
                for (i, f), e in zip(batch, emb):
                    p = parts[i]
                    p[0].append(f.index)
                    p[1].append(f.timestamp)
                    p[2].append(e)
                    if keep_frames:
                        p[3].append(f)
                done += len(batch)
                progress(done, max(total, done), "encoding")
            for i, src, sha, key in todo:
                idx, ts, embs, frs = parts[i]
                if not embs:
                    raise InvalidVideoError(f"{src}: no decodable frame")
                ev = EmbeddedVideo(src, sha, np.asarray(idx, np.int64), np.asarray(ts, np.float64),
                                   np.stack(embs).astype(np.float32), False, frs if keep_frames else None)
                self.cache.put(key, CachedEmbeddings(ev.frame_indices, ev.timestamps, ev.embeddings))
                results[i] = ev
        progress(max(total, done), max(total, done), "done")
        return [r for r in results if r is not None]

    def check_sources(self, sources: Sequence[str | Path]) -> None:
        """Each source is a file or frame folder that opens within the limits: checked before any
        encoder is built, so a bad or too long video fails in a second, not after loading a model."""
        for src in sources:
            if source_kind(str(src)) not in ("file", "folder"):
                raise InvalidVideoError(f"{src}: only video files and frame folders can be read offline")
            probe(src, max_duration_s=self.settings.max_duration_s)

    # -- train ------------------------------------------------------------------------------
    def fit(
        self,
        sources: Sequence[str | Path],
        *,
        progress: Progress | None = None,
        embedded: list[EmbeddedVideo] | Callable[[], list[EmbeddedVideo]] | None = None,
        names: Sequence[str] | None = None,
        interval_ms: int | None = None,
    ) -> AnomalyModel:
        """Learn normality from normal videos; returns an unsaved :class:`AnomalyModel`.

        ``embedded``: embeddings of the sources already at hand (or a function making them), used
        by frame-embedding detectors instead of encoding again; detectors that read the video
        itself use ``sources``. ``names``: what the model calls the videos (e.g. the names users
        uploaded them under). ``interval_ms``: sampling of the training videos (default: the
        settings'), recorded in the model as the sampling it scores with.
        """
        if not sources and not embedded:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        s = self.settings
        cls = get_detector_class(s.detector)
        if cls.reads_video and sources:
            self.check_sources(sources)  # a bad path or a too-long video fails before any encoder is built
            enc = self.detector_encoder(cls) if cls.encoder_needed(s) else encoder_for_identity(NULL_IDENTITY)
            scorer = self.video_scorer(encoder=enc, interval_ms=interval_ms)
            total = sum(expected_samples(src, scorer.interval_ms, s.max_frames) for src in sources)
            progress = progress or _noop
            progress(0, total, "extracting")

            reported = [0]

            def cb(done: int, _total: int, stage: str) -> None:
                reported[0] = max(reported[0], done)
                progress(done, max(total, done), stage)

            scorer.fit([str(x) for x in sources], cb, names=names)
            vids = scorer.train_videos
            # a scorer may read a source more than once (motion: also a degraded copy); the count a
            # progress bar shows never goes back
            n = max(sum(v.n_frames for v in vids), reported[0])
            progress(n, n, "done")
            return self._model(cls.from_scorer(scorer), enc, vids, names, scorer.interval_ms)
        if callable(embedded):
            embedded = embedded()
        interval = s.interval_ms if interval_ms is None else interval_ms
        vids = embedded if embedded is not None else self.embed(sources, progress=progress, interval_ms=interval)
        enc = self.encoder  # after embed: it checks every source before building the encoder
        X = np.concatenate([v.embeddings for v in vids])
        if len(X) < 2:
            raise InvalidVideoError(
                f"training needs at least 2 sampled frames, got {len(X)}: use longer videos or a "
                "shorter interval"
            )
        det = create_detector(s.detector, nu=s.nu, gamma=_gamma(s.gamma), groups=enc.groups).fit(X)
        return self._model(det, enc, vids, names, interval)

    def _model(self, det: BaseDetector, enc: Encoder, vids: list[EmbeddedVideo], names: Sequence[str] | None,
               interval_ms: int) -> AnomalyModel:
        """The model of a fitted detector: encoder identity, prompts, training videos and frames."""
        s = self.settings
        if names is None or len(names) != len(vids):
            names = [Path(v.source).name for v in vids]
        X = np.concatenate([v.embeddings for v in vids])
        refs = np.concatenate([
            np.stack([np.full(v.n_frames, k), v.frame_indices, np.round(v.timestamps * 1000)], 1)
            for k, v in enumerate(vids)
        ]).astype(np.int64)
        return AnomalyModel(
            encoder=enc.identity,
            detector=det,
            prompts=build_prompts(s.expected_objects) if enc.supports_text else [],
            expected_objects=list(s.expected_objects),
            videos=[TrainingVideo(str(n), v.sha256, v.n_frames, v.duration_s) for n, v in zip(names, vids)],
            interval_ms=interval_ms,
            smoothing_window=s.smoothing_window,
            threshold=s.threshold,
            train_embeddings=X.astype(np.float16),
            train_refs=refs,
            extra={"runtime": enc.runtime, **det.model_extra()},
        )

    def video_scorer(self, model: AnomalyModel | None = None, *, encoder: Encoder | None = None,
                     interval_ms: int | None = None) -> VideoScorer:
        """The scorer of a detector that reads the video itself: holding ``model``'s state, or fresh
        (the settings' detector) to fit. Sampling: the model's own unless ``interval_ms`` says."""
        s = self.settings
        if model is None:
            cls = get_detector_class(s.detector)
            enc = encoder or self.encoder
            interval = s.interval_ms if interval_ms is None else interval_ms
        else:
            cls = type(model.detector)
            enc = encoder or self.encoder_for(model)
            interval = model.interval_ms if interval_ms is None else interval_ms
        ctx = VideoContext(enc, s, interval, s.max_side, s.max_frames)
        return cls.video_scorer(ctx, None if model is None else model.detector)

    def train(self, name: str, sources: Sequence[str | Path], *, progress: Progress | None = None,
              overwrite: bool = True) -> AnomalyModel:
        """Fit on normal videos and save the model under ``name`` (validated before any work)."""
        return self.fit_and_save(name, lambda: self.fit(sources, progress=progress), overwrite=overwrite)

    def fit_and_save(self, name: str, fit: Callable[[], AnomalyModel], *, overwrite: bool = True) -> AnomalyModel:
        """Check ``name`` first (a bad or taken name fails before minutes of encoding), then fit and save."""
        self.store.path_for(name)
        if not overwrite and self.store.exists(name):
            raise InvalidModelNameError(f"a model named {name!r} already exists")
        model = fit()
        self.store.save(model, name, overwrite=overwrite)
        return model

    # -- score ------------------------------------------------------------------------------
    def load(self, model: str | AnomalyModel) -> AnomalyModel:
        return self.store.load(model) if isinstance(model, str) else model

    def score(
        self,
        model: str | AnomalyModel,
        source: str | Path,
        *,
        progress: Progress | None = None,
        describe: bool = True,
        keep_frames: bool = False,
        threshold: float | None = None,
        interval_ms: int | None = None,
    ) -> ScoreResult:
        """Score every sampled frame of a video with a saved (or given) model.

        The model's own sampling interval, encoder and features apply unless ``interval_ms`` says
        otherwise: scores are only comparable with the training frames at the same sampling.
        """
        m = self.load(model)
        if m.detector.reads_video:
            return self._score_video(m, source, progress=progress, describe=describe, threshold=threshold,
                                     interval_ms=interval_ms)
        enc = self.encoder_for(m)
        t0 = time.perf_counter()
        [ev] = self.embed([source], encoder=enc, progress=progress, keep_frames=keep_frames,
                          interval_ms=m.interval_ms if interval_ms is None else interval_ms)
        t1 = time.perf_counter()
        return self.score_embedded(m, ev, describe=describe, threshold=threshold, encoder=enc,
                                   timing={"embed_s": round(t1 - t0, 4), "runtime": enc.runtime,
                                           "threads": self.threads})

    def _score_video(self, m: AnomalyModel, source: str | Path, *, progress: Progress | None,
                     describe: bool, threshold: float | None, interval_ms: int | None) -> ScoreResult:
        """A detector that reads the video: its scorer samples, scores and explains every frame."""
        enc = self.encoder_for(m)
        scorer = self.video_scorer(m, encoder=enc, interval_ms=interval_ms)
        total = expected_samples(source, scorer.interval_ms, self.settings.max_frames)
        progress = progress or _noop
        progress(0, total, "scoring")
        t0 = time.perf_counter()
        res = scorer.score_detailed(source, lambda done: progress(done, max(total, done), "scoring"))
        t1 = time.perf_counter()
        if describe and not enc.supports_text and any(e.get("text") for e in res.explanations):
            # no text tower: say what the detector saw (motion, regions) instead of ImageNet labels
            descs = [Description((e.get("text", ""),), (1.0,)) for e in res.explanations]
        else:
            descs = self.describe_embeddings(m, res.frame_embeddings, encoder=enc) if describe else []
        raw = np.asarray(res.scores, np.float64)
        return ScoreResult(
            source=str(source),
            model=m.name,
            frame_indices=res.frame_indices,
            timestamps=res.timestamps,
            raw_scores=raw,
            smoothed_scores=moving_average(raw, m.smoothing_window),
            threshold=m.threshold if threshold is None else threshold,
            smoothing_window=m.smoothing_window,
            descriptions=[d.text for d in descs],
            confidences=[d.confidence for d in descs],
            embeddings=res.frame_embeddings,
            timing={"extract_and_score_s": round(t1 - t0, 4), "frames": len(raw),
                    "seconds_per_frame": round((t1 - t0) / max(1, len(raw)), 4)},
            explanations=res.explanations,
        )

    def score_embedded(
        self,
        model: AnomalyModel,
        ev: EmbeddedVideo,
        *,
        describe: bool = True,
        threshold: float | None = None,
        encoder: Encoder | None = None,
        timing: dict | None = None,
    ) -> ScoreResult:
        t1 = time.perf_counter()
        raw, smooth, _ = model.score(ev.embeddings)
        descs: list[Description] = []
        if describe:
            descs = self.describe_embeddings(model, ev.embeddings, encoder=encoder)
        timing = dict(timing or {})
        timing["score_s"] = round(time.perf_counter() - t1, 4)
        timing["frames"] = ev.n_frames
        timing["from_cache"] = ev.from_cache
        return ScoreResult(
            source=ev.source,
            model=model.name,
            frame_indices=ev.frame_indices,
            timestamps=ev.timestamps,
            raw_scores=raw,
            smoothed_scores=smooth,
            threshold=model.threshold if threshold is None else threshold,
            smoothing_window=model.smoothing_window,
            descriptions=[d.text for d in descs],
            confidences=[d.confidence for d in descs],
            embeddings=ev.embeddings,
            timing=timing,
        )

    # -- describe ---------------------------------------------------------------------------
    def describe_embeddings(
        self, model: AnomalyModel | None, embeddings: np.ndarray, *, encoder: Encoder | None = None
    ) -> list[Description]:
        enc = encoder or self.encoder
        kwargs = {"top_k": self.settings.top_k}
        if model is not None and model.prompts and enc.supports_text:
            kwargs["prompts"] = model.prompts
        elif enc.supports_text:
            kwargs["prompts"] = build_prompts(self.settings.expected_objects)
        return enc.describe(embeddings, **kwargs)

    def describe(self, source: str | Path, *, progress: Progress | None = None
                 ) -> tuple[EmbeddedVideo, list[Description]]:
        """Zero-shot description of each sampled frame of a video."""
        [ev] = self.embed([source], progress=progress)
        return ev, self.describe_embeddings(None, ev.embeddings)


def _gamma(g: str | float) -> str | float:
    if isinstance(g, str) and g not in ("scale", "auto"):
        try:
            return float(g)
        except ValueError:
            raise VlmAnomalyError(f"gamma must be 'scale', 'auto' or a number, not {g!r}") from None
    return g


def iter_embeddings(encoder: Encoder, frames: Iterable[Frame], batch_size: int
                    ) -> Iterator[tuple[list[Frame], np.ndarray]]:
    """Batched embedding of a frame stream (live sources): yields (frames, embeddings)."""
    for batch in batched(frames, batch_size):
        yield batch, encoder.encode([f.image for f in batch])
