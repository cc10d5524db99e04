"""Detectors over frame embeddings, in the scikit-learn / PyOD style, and their scorer.

*Features*: one embedding per sampled frame, made by the pipeline's encoder through its embedding
cache (:attr:`~.contract.DetectorContext.embed`); *density*: the detector. The constructor only
stores parameters; ``fit`` learns from normal embeddings and returns ``self``; fitted state ends in
``_``. A detector saves itself as JSON parameters plus named float arrays (:meth:`get_state` /
:meth:`from_state`), so a model file never needs pickle.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import gamma_value
from ..errors import ConfigError, EncoderMismatchError, InvalidVideoError, NotFittedError
from ..values import EmbeddedVideo, FrameScores
from .contract import Detector, DetectorContext, FrameProgress, Progress, cannot_learn
from .registry import construct

if TYPE_CHECKING:
    from ..config import Settings
    from ..encoders.base import Encoder
    from ..video.frames import Frame


def parse_gamma(g: str | float) -> str | float:
    """The rbf width setting: "scale", "auto" or a finite number > 0 (the settings' own check)."""
    try:
        return gamma_value(g)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class BaseDetector(Detector):
    """One-class detector over (N, D) float embeddings."""

    @classmethod
    def from_settings(cls, settings: Settings, encoder: Encoder) -> BaseDetector:
        """A fresh detector with the settings' hyper-parameters (those its constructor takes)."""
        return construct(cls, nu=settings.nu, gamma=parse_gamma(settings.gamma), groups=encoder.groups)

    @classmethod
    def scorer_for(cls, ctx: DetectorContext, fitted: Detector | None = None) -> EmbeddingScorer:
        return EmbeddingScorer(cls, ctx, fitted)

    @abstractmethod
    def fit(self, X: np.ndarray) -> BaseDetector:
        """Learn normality from embeddings of normal frames; returns ``self``."""

    @abstractmethod
    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Raw decision scores of validated input (higher = more normal)."""

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise EncoderMismatchError(f"expected a 2-D array of embeddings, got shape {X.shape}")
        if self.is_fitted and X.shape[1] != self.n_features_in_:
            raise EncoderMismatchError(
                f"embedding dimension {X.shape[1]} does not match the model's {self.n_features_in_}"
            )
        if not np.all(np.isfinite(X)):
            raise EncoderMismatchError("embeddings contain NaN or infinite values")
        return X

    def _check_fit_X(self, X: np.ndarray, min_samples: int = 2) -> np.ndarray:
        X = self._check_X(X)
        if len(X) < min_samples:
            raise ValueError(f"need at least {min_samples} normal frames to fit, got {len(X)}")
        return X

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores (N,) - higher is more normal; compare with ``threshold_``."""
        self._check_fitted()
        X = self._check_X(X)
        if len(X) == 0:
            return np.zeros(0)
        return self._decision(X)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.decision_function(X)

    def predict(self, X: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """+1 for normal, -1 for anomalous (scikit-learn's convention)."""
        t = self.threshold_ if threshold is None else threshold
        return np.where(self.decision_function(X) >= t, 1, -1)


class EmbeddingScorer:
    """The scorer of an embedding detector: the pipeline samples and encodes (cache-aware), the
    detector fits and scores the embeddings; live frames are encoded with the same encoder."""

    def __init__(self, cls: type[BaseDetector], ctx: DetectorContext, fitted: Detector | None = None):
        self.cls, self.ctx = cls, ctx
        self.interval_ms = self.fit_interval_ms = ctx.interval_ms
        self.needs_previous = False
        self.detector = fitted
        self._train: list[EmbeddedVideo] = []

    def _embed(self, sources: Sequence[str | Path], progress: Progress | None) -> list[EmbeddedVideo]:
        if self.ctx.embed is None or self.ctx.encoder is None:
            raise ConfigError(f"detector {self.cls.name!r} needs frame embeddings: give it an encoder")
        return self.ctx.embed([str(s) for s in sources], progress)

    def _embed_one(self, source: str | Path, progress: FrameProgress | None) -> EmbeddedVideo:
        [ev] = self._embed([source], (lambda done, _total, _stage: progress(done)) if progress else None)
        return ev

    def fit(self, sources: Sequence[str | Path], progress: Progress | None = None, *,
            names: Sequence[str] | None = None) -> EmbeddingScorer:
        vids = self._embed(sources, progress)
        X = np.concatenate([v.embeddings for v in vids])
        if len(X) < 2:
            raise InvalidVideoError(f"training needs at least 2 sampled frames, got {len(X)}: use longer videos "
                                    "or a shorter interval")
        assert self.ctx.encoder is not None
        self.detector = self.cls.from_settings(self.ctx.settings, self.ctx.encoder).fit(X)
        self._train = vids
        return self

    @property
    def train_videos(self) -> list[EmbeddedVideo]:
        return self._train

    def fitted(self) -> BaseDetector:
        if not isinstance(self.detector, BaseDetector):
            raise NotFittedError(f"{self.cls.__name__} is not fitted: call fit() first")
        return self.detector

    def score(self, source: str | Path, progress: FrameProgress | None = None) -> FrameScores:
        det = self.fitted()
        t0 = time.perf_counter()
        ev = self._embed_one(source, progress)
        t1 = time.perf_counter()
        scores = det.decision_function(ev.embeddings)
        return FrameScores(ev.source, ev.frame_indices, ev.timestamps, scores, [], ev.embeddings, ev.from_cache,
                           {"embed_s": round(t1 - t0, 4), "score_s": round(time.perf_counter() - t1, 4)})

    def add_normal(self, source: str | Path, start_s: float | None = None, end_s: float | None = None, *,
                   key: str, name: str, progress: FrameProgress | None = None) -> int:
        """Learn footage marked normal, for detectors that keep normal examples (``add_rows``):
        the source's frame embeddings (through the pipeline's cache) between ``start_s`` and ``end_s``."""
        det = self.fitted()
        if not hasattr(det, "add_rows"):
            raise cannot_learn(self.cls.name)
        ev = self._embed_one(source, progress)
        t = ev.timestamps
        sel = np.ones(len(t), bool)
        if start_s is not None:
            sel &= t >= start_s - 1e-6
        if end_s is not None:
            sel &= t <= end_s + 1e-6
        if not sel.any():
            raise InvalidVideoError("no sampled frame in the footage to mark normal")
        det.add_rows(ev.embeddings[sel], key)
        return int(sel.sum())

    def remove_normal(self, key: str) -> None:
        det = self.fitted()
        if not hasattr(det, "remove_rows"):
            raise cannot_learn(self.cls.name)
        det.remove_rows(key)

    def score_frames(self, frames: Sequence[Frame]) -> FrameScores:
        det = self.fitted()
        assert self.ctx.encoder is not None
        emb = self.ctx.encoder.encode([f.image for f in frames])
        return FrameScores(frames[0].source if frames else "", np.array([f.index for f in frames], np.int64),
                           np.array([f.timestamp for f in frames], np.float64), det.decision_function(emb),
                           [], emb)


def require(arrays: dict[str, np.ndarray], name: str, shape: tuple, *, finite: bool = True) -> np.ndarray:
    """Fetch a saved array, checking its shape (``-1`` = any) and values. Raises ValueError."""
    if name not in arrays:
        raise ValueError(f"array {name!r} missing")
    a = np.asarray(arrays[name], dtype=np.float64)
    if a.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"array {name!r} has shape {a.shape}, expected {shape}")
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"array {name!r} holds NaN or infinite values")
    return a
