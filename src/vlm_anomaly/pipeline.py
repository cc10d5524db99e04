"""source → detector (features + density) → results: the one path every interface calls.

Every detector is called the same way (:mod:`~vlm_anomaly.detectors.contract`): the pipeline builds
its context (encoder, sampling, limits, the cached frame embeddings), fits a scorer on normal
sources, and scores sources into :class:`~vlm_anomaly.values.FrameScores`, then describes and labels
them. The CLI, the dashboard and the REST API only collect options and show what comes back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import Settings, load_settings, updated
from .detectors import Detector, DetectorContext, Scorer, get_detector_class
from .detectors.contract import Progress, no_progress
from .encoders import Encoder, build_prompts, encoder_from_settings, encoder_options
from .encoders.base import Description
from .errors import ConfigError, InvalidModelNameError, InvalidVideoError, VlmAnomalyError
from .model import AnomalyModel, TrainingVideo
from .results import ScoreResult, gap_breaks
from .smoothing import agreeing
from .store import CachedEmbeddings, EmbeddingCache, ModelStore
from .threads import configure_threads
from .values import EmbeddedVideo, FrameScores
from .video import (
    Frame,
    VideoInfo,
    batched,
    content_hash,
    list_frame_files,
    prefetch,
    probe,
    sample_frames,
    source_kind,
)
from .video.decode import file_gaps
from .video.sources import DEFAULT_FOLDER_FPS

log = logging.getLogger(__name__)

def probed(source: str | Path, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo | None:
    """The source's header, or None when it cannot be read (reading it then gives the clear error)."""
    try:
        return probe(source, folder_fps=folder_fps)
    except VlmAnomalyError:
        return None


def folder_rate(scorer: Scorer) -> float:
    """The rate ``scorer`` reads a frame folder at (optional in the contract: a motion model reads
    it at its training videos' rate)."""
    return getattr(scorer, "folder_fps", DEFAULT_FOLDER_FPS)


def expected_samples(source: str | Path | VideoInfo | None, interval_ms: int, max_frames: int = 0) -> int:
    """Estimate of how many frames sampling will yield (for progress bars); 0 if unknown.
    ``source`` may be its header, already read."""
    info = source if isinstance(source, VideoInfo) or source is None else probed(source)
    if info is None or info.frame_count <= 0:
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
        #: encoders built so far, by their options (a detector may choose other settings than the configured)
        self._encoders: dict[str, Encoder] = {}
        if encoder is not None:
            self._encoders[_options_key(self.settings)] = encoder
        self.store = ModelStore(self.settings.models_path)
        self.cache = EmbeddingCache(self.settings.cache_path, enabled=self.settings.embedding_cache)
        self.threads = configure_threads(self.settings.threads)

    # -- encoders ---------------------------------------------------------------------------
    def _encoder_of(self, settings: Settings) -> Encoder:
        key = _options_key(settings)
        if key not in self._encoders:
            self._encoders[key] = encoder_from_settings(settings)
        return self._encoders[key]

    @property
    def encoder(self) -> Encoder:
        """The configured encoder, built on first use."""
        return self._encoder_of(self.settings)

    def detector_encoder(self, cls: type[Detector]) -> Encoder | None:
        """The encoder a detector class fits with: the one its settings choose, None if it embeds nothing."""
        es = cls.encoder_settings(self.settings)
        return None if es is None else self._encoder_of(es)

    def encoder_for(self, model: AnomalyModel) -> Encoder | None:
        """The encoder a model was trained with: one already built if it matches, else rebuilt from
        the model's identity. A model that embeds nothing has none. An encoder the settings pin
        (not ``auto``) that does not match the model is an error that says why."""
        if model.encoder is None:
            return None
        es = type(model.detector).encoder_settings(self.settings) or self.settings
        key = _options_key(es)
        enc = self._encoders.get(key)
        if enc is not None:
            try:
                model.check_encoder(enc.identity)
                return enc
            except VlmAnomalyError:
                if es.encoder != "auto" and key == _options_key(self.settings):
                    raise
        enc = encoder_from_settings(es, model.encoder)
        self._encoders[key] = enc
        return enc

    # -- embedding --------------------------------------------------------------------------
    def embed(self, sources: Sequence[str | Path], *, encoder: Encoder | None = None, progress: Progress | None = None,
              interval_ms: int | None = None) -> list[EmbeddedVideo]:
        """Embed several sources as one stream of batches (no per-video reloads), cache-aware.

        Every source is checked (exists, opens, within the limits) before the encoder is built,
        so a bad path fails in a second, not after loading a model.
        """
        s = self.settings
        infos = dict(zip(map(str, sources), self.check_sources(sources)))
        enc = encoder or self.encoder
        interval = s.interval_ms if interval_ms is None else interval_ms
        progress = progress or no_progress
        results: list[EmbeddedVideo | None] = [None] * len(sources)
        todo: list[tuple[int, str, str, str]] = []
        for i, src in enumerate(sources):
            src = str(src)
            sha = content_hash(src)
            key = EmbeddingCache.key(sha, enc.cache_key, interval, s.max_side, s.max_frames,
                                     s.max_duration_s)
            hit = self.cache.get(key, enc.dim)
            if hit is not None:
                results[i] = EmbeddedVideo(src, sha, hit.indices, hit.timestamps, hit.embeddings, True)
            else:
                todo.append((i, src, sha, key))
        total = sum(expected_samples(infos[src], interval, s.max_frames) for _, src, _, _ in todo)
        done = 0
        progress(0, total, "encoding")
        if todo:
            parts: dict[int, list] = {i: [] for i, *_ in todo}  # (index, timestamp, embedding) per frame

            def frames() -> Iterator[tuple[int, Frame]]:
                for i, src, _, _ in todo:
                    for f in sample_frames(src, interval_ms=interval, max_side=s.max_side,
                                           max_frames=s.max_frames, max_duration_s=s.max_duration_s):
                        yield i, f

            for batch in batched(prefetch(frames(), maxsize=max(2 * s.batch_size, 32)), s.batch_size):
                emb = enc.encode([f.image for _, f in batch])
                for (i, f), e in zip(batch, emb):
                    parts[i].append((f.index, f.timestamp, e))
                done += len(batch)
                progress(done, max(total, done), "encoding")
            for i, src, sha, key in todo:
                if not parts[i]:
                    raise InvalidVideoError(f"{src}: no decodable frame")
                idx, ts, embs = zip(*parts[i])
                ev = EmbeddedVideo(src, sha, np.asarray(idx, np.int64), np.asarray(ts, np.float64),
                                   np.stack(embs).astype(np.float32), False)
                self.cache.put(key, CachedEmbeddings(ev.frame_indices, ev.timestamps, ev.embeddings))
                results[i] = ev
        progress(max(total, done), max(total, done), "done")
        return [r for r in results if r is not None]

    def check_sources(self, sources: Sequence[str | Path]) -> list[VideoInfo]:
        """Each source is a file or frame folder that opens within the limits: checked before any
        encoder is built, so a bad or too long video fails in a second, not after loading a model.
        Returns their headers (progress counts reuse them: reading one decodes a frame)."""
        infos = []
        for src in sources:
            if source_kind(str(src)) not in ("file", "folder"):
                raise InvalidVideoError(f"{src}: only video files and frame folders can be read offline")
            infos.append(probe(src, max_duration_s=self.settings.max_duration_s))
        return infos

    @staticmethod
    def check_distinct(sources: Sequence[str | Path], names: Sequence[str] | None = None) -> None:
        """Refuse the same video given twice (another name, the same content). Why: each training
        clip is held out in turn to set the threshold, and a clip's twin explains it perfectly, so
        the threshold came out far too tight: three Ped2 clips, one of them twice, flagged 50-83 %
        of new normal clips, 0 % without the twin. Only sources of one size are hashed."""
        shown = list(names) if names is not None and len(names) == len(sources) else [str(s) for s in sources]
        groups: dict[tuple, list[int]] = {}
        for i, src in enumerate(sources):
            p = Path(src)
            size = len(list_frame_files(p)) if p.is_dir() else p.stat().st_size
            groups.setdefault((p.is_dir(), size), []).append(i)
        for same_size in (g for g in groups.values() if len(g) > 1):
            first: dict[str, int] = {}
            for i in same_size:
                j = first.setdefault(content_hash(sources[i]), i)
                if j != i:
                    raise InvalidVideoError(f"{shown[i]} is the same video as {shown[j]} (identical content): "
                                            "give each training clip once")

    # -- the detector's context ----------------------------------------------------------------
    def context(self, encoder: Encoder | None, interval_ms: int, *,
                embedded: list[EmbeddedVideo] | Callable[[], list[EmbeddedVideo]] | None = None) -> DetectorContext:
        """What a detector runs with: its encoder, sampling, limits, and frame embeddings
        (``embedded`` when already at hand, else :meth:`embed` through the cache)."""
        s = self.settings

        def embed(sources: Sequence[str], progress: Progress | None) -> list[EmbeddedVideo]:
            if embedded is not None:
                return embedded() if callable(embedded) else embedded
            return self.embed(sources, encoder=encoder, progress=progress, interval_ms=interval_ms)

        return DetectorContext(encoder, s, interval_ms, s.max_side, s.max_frames, embed)

    def scorer(self, model: AnomalyModel, *, interval_ms: int | None = None) -> Scorer:
        """The scorer holding ``model``'s state (its encoder; its sampling unless ``interval_ms`` says)."""
        interval = model.interval_ms if interval_ms is None else interval_ms
        cls = type(model.detector)
        return cls.scorer_for(self.context(self.encoder_for(model), interval), model.detector)

    # -- train ------------------------------------------------------------------------------
    def fit(self, sources: Sequence[str | Path], *, progress: Progress | None = None,
            embedded: list[EmbeddedVideo] | Callable[[], list[EmbeddedVideo]] | None = None,
            names: Sequence[str] | None = None, interval_ms: int | None = None) -> AnomalyModel:
        """Learn normality from normal videos; returns an unsaved :class:`AnomalyModel`.

        ``embedded``: frame embeddings of the sources already at hand (or a function making them),
        which detectors over frame embeddings use instead of encoding again. ``names``: what the
        model calls the videos (e.g. the names users uploaded them under). ``interval_ms``:
        sampling of the training videos (default: the settings'), recorded in the model as the
        sampling it scores with.
        """
        if not sources and not embedded:
            raise InvalidVideoError("training needs at least one normal video or frame folder")
        s = self.settings
        cls = get_detector_class(s.detector)
        interval = s.interval_ms if interval_ms is None else interval_ms
        infos = self.check_sources(sources)  # a bad path or a too-long video fails before any encoder is built
        self.check_distinct(sources, names)
        enc = self.detector_encoder(cls)
        scorer = cls.scorer_for(self.context(enc, interval, embedded=embedded))
        total = 0 if embedded is not None else getattr(scorer, "fit_reads", 1) * sum(
            expected_samples(x, scorer.fit_interval_ms, s.max_frames) for x in infos)
        progress = progress or no_progress
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
        return self._model(scorer.fitted(), enc, vids, names, interval, scorer.fit_interval_ms)

    def _model(self, det: Detector, enc: Encoder | None, vids: list[EmbeddedVideo], names: Sequence[str] | None,
               interval_ms: int, fit_interval_ms: int) -> AnomalyModel:
        """The model of a fitted detector: encoder identity, prompts, training videos and frames."""
        s = self.settings
        if names is None or len(names) != len(vids):
            names = [Path(v.source).name for v in vids]
        X = refs = None
        if enc is not None and vids and all(v.embeddings is not None for v in vids):
            X = np.concatenate([v.embeddings for v in vids]).astype(np.float16)
            refs = np.concatenate([
                np.stack([np.full(v.n_frames, k), v.frame_indices, np.round(v.timestamps * 1000)], 1)
                for k, v in enumerate(vids)
            ]).astype(np.int64)
        return AnomalyModel(
            encoder=enc.identity if enc is not None else None, detector=det,
            prompts=build_prompts(s.expected_objects) if enc is not None and enc.supports_text else [],
            expected_objects=list(s.expected_objects),
            videos=[TrainingVideo(str(n), v.sha256, v.n_frames, v.duration_s) for n, v in zip(names, vids)],
            interval_ms=interval_ms, fit_interval_ms=fit_interval_ms,
            smoothing_window=s.smoothing_window, threshold=s.threshold,
            train_embeddings=X, train_refs=refs,
            extra={"runtime": enc.runtime if enc is not None else "none", **det.model_extra()})

    def train(self, name: str, sources: Sequence[str | Path], *, progress: Progress | None = None,
              overwrite: bool = True, names: Sequence[str] | None = None) -> AnomalyModel:
        """Fit on normal videos and save the model under ``name`` (validated before any work).
        ``names``: what the model calls the videos (default: their file names)."""
        return self.fit_and_save(name, lambda: self.fit(sources, progress=progress, names=names), overwrite=overwrite)

    def fit_and_save(self, name: str, fit: Callable[[], AnomalyModel], *, overwrite: bool = True) -> AnomalyModel:
        """Check ``name`` first (a bad or taken name fails before minutes of encoding), then fit and save."""
        self.store.check_writable(name)
        if not overwrite and self.store.exists(name):
            raise InvalidModelNameError(f"a model named {name!r} already exists")
        model = fit()
        self.store.save(model, name, overwrite=overwrite)
        return model

    # -- score ------------------------------------------------------------------------------
    def load(self, model: str | AnomalyModel) -> AnomalyModel:
        return self.store.load(model) if isinstance(model, str) else model

    def score(self, model: str | AnomalyModel, source: str | Path, *, progress: Progress | None = None,
              describe: bool = True, threshold: float | None = None, interval_ms: int | None = None) -> ScoreResult:
        """Score every sampled frame of a video with a saved (or given) model; holes in its
        timestamps are gaps, as ``watch`` finds them (the settings' stall timeout).

        The model's own sampling interval, encoder and features apply unless ``interval_ms`` says
        otherwise: scores are only comparable with the training frames at the same sampling.
        Both overrides are checked first (a NaN threshold flagged nothing and wrote NaN into the
        JSON; a negative interval read every frame).
        """
        if interval_ms is not None:
            updated(self.settings, {"interval_ms": interval_ms})  # the settings' own check
        if threshold is not None and not math.isfinite(threshold):
            raise ConfigError(f"threshold must be a finite number, got {threshold}")
        m = self.load(model)
        scorer = self.scorer(m, interval_ms=interval_ms)
        info = probed(source, folder_rate(scorer))
        total = expected_samples(info, scorer.interval_ms, self.settings.max_frames)
        progress = progress or no_progress
        progress(0, total, "scoring")
        t0 = time.perf_counter()
        res = scorer.score(source, lambda done: progress(done, max(total, done), "scoring"))
        wall = time.perf_counter() - t0
        progress(res.n_frames, max(total, res.n_frames), "done")
        enc = self.encoder_for(m)
        timing = {**res.timing, "total_s": round(wall, 4), "frames": res.n_frames,
                  "seconds_per_frame": round(wall / max(1, res.n_frames), 4), "from_cache": res.from_cache,
                  "runtime": enc.runtime if enc is not None else "none", "threads": self.threads}
        # the result people read: scores, labels, descriptions, and incidents as live monitoring builds them;
        # a flagged frame is explained (and described) by what made its smoothed score low, within its gap
        thr = m.threshold if threshold is None else threshold
        # the end a file lacks is a gap, unless scoring stopped at max_frames on purpose
        stopped = self.settings.max_frames and res.n_frames >= self.settings.max_frames
        length = info.length_s if info is not None and not stopped else 0.0
        gaps = file_gaps(str(source), res.frame_indices, res.timestamps, self.settings.sampling.stream_stall_timeout_s,
                         length)
        res = replace(res, explanations=agreeing(res.scores, res.timestamps, res.explanations, m.smoothing_window,
                                                 threshold=thr, breaks=gap_breaks(res.timestamps, gaps)))
        descs = self.describe_scores(m, res) if describe else []
        return ScoreResult.of(
            res, model=m.name, threshold=thr, smoothing_window=m.smoothing_window,
            descriptions=[d.text for d in descs], confidences=[d.confidence for d in descs], timing=timing,
            interval_ms=scorer.interval_ms, events=self.settings.events, gaps=gaps)

    def score_each(self, model: str | AnomalyModel, sources: Sequence[str | Path], **kwargs
                   ) -> Iterator[tuple[str | Path, ScoreResult | InvalidVideoError]]:
        """``(source, result)`` for each source in turn, as soon as it is scored; a source that cannot
        be read gives its :class:`InvalidVideoError` in place of the result and the others go on.

        Why: one corrupt file in a batch of a hundred must not lose the other results (a model-wide
        failure, such as an unknown model, still raises at once). ``kwargs`` go to :meth:`score`.
        """
        m = self.load(model)
        for src in sources:
            try:
                result = self.score(m, src, **kwargs)
            except InvalidVideoError as exc:
                yield src, exc
            else:
                yield src, result

    def describe_scores(self, model: AnomalyModel, res: FrameScores) -> list[Description]:
        """Words for each scored frame: zero-shot over the model's prompts when the frames have
        embeddings an encoder with a text tower made, else what the detector saw (its explanations)."""
        enc = self.encoder_for(model)
        explained = any(e.get("text") for e in res.explanations)
        if enc is None or res.embeddings is None or (explained and not enc.supports_text):
            return [Description((e.get("text", ""),), (1.0,)) for e in res.explanations] if explained else []
        return self.describe_embeddings(model, res.embeddings, encoder=enc)

    # -- describe ---------------------------------------------------------------------------
    def describe_embeddings(
        self, model: AnomalyModel | None, embeddings: np.ndarray, *, encoder: Encoder | None = None
    ) -> list[Description]:
        enc = encoder or self.encoder
        if not enc.supports_text:
            return enc.describe(embeddings, top_k=self.settings.top_k)
        prompts = (model.prompts if model is not None else None) or build_prompts(self.settings.expected_objects)
        return enc.describe(embeddings, top_k=self.settings.top_k, prompts=prompts)

    def describe(self, source: str | Path, *, progress: Progress | None = None
                 ) -> tuple[EmbeddedVideo, list[Description]]:
        """Zero-shot description of each sampled frame of a video."""
        [ev] = self.embed([source], progress=progress)
        return ev, self.describe_embeddings(None, ev.embeddings)


def _options_key(settings: Settings) -> str:
    """Encoders built from equal options are one encoder."""
    return repr(sorted(encoder_options(settings).items()))

