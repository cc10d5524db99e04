"""A trained anomaly model: encoder identity + fitted detector + what it was trained on.

This is the unit the store saves and every interface loads; the pipeline scores sources with it
through the detector contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .detectors import BaseDetector, Detector, get_detector_class, moving_average
from .encoders.identity import EncoderIdentity
from .errors import EncoderMismatchError, VlmAnomalyError
from .values import utc_stamp

FORMAT_VERSION = 1
#: the encoder backend that models of motion alone recorded before they could record none
LEGACY_NO_ENCODER = "motion"


@dataclass
class TrainingVideo:
    """One training source as recorded in the model (content hash, not only the name)."""

    name: str
    sha256: str
    frames: int
    duration_s: float

    def as_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "frames": self.frames,
                "duration_s": round(self.duration_s, 3)}


@dataclass
class AnomalyModel:
    """A fitted detector and what it was trained on; higher scores = more normal, below
    ``threshold`` = anomalous. ``encoder`` is None for detectors that embed nothing.

    Example:
        >>> model = store.load("office-day")  # doctest: +SKIP
        >>> raw, smooth, is_anomaly = model.score(embeddings)  # doctest: +SKIP
    """

    encoder: EncoderIdentity | None
    detector: Detector
    prompts: list[str] = field(default_factory=list)
    expected_objects: list[str] = field(default_factory=list)
    videos: list[TrainingVideo] = field(default_factory=list)
    interval_ms: int = 500
    #: the sampling the training clips were read at (a detector may train denser than it scores)
    fit_interval_ms: int | None = None
    smoothing_window: int = 5
    threshold: float = 0.0
    created: str = field(default_factory=utc_stamp)
    name: str = ""
    #: embeddings of the training frames (for nearest-normal-frame lookups), float16 to save space
    train_embeddings: np.ndarray | None = None
    #: (video number, frame index, timestamp ms) of each training embedding
    train_refs: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: footage marked normal after training, oldest first (see ``vlm_anomaly.normal``)
    normal_additions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return sum(v.frames for v in self.videos)

    @property
    def encoder_label(self) -> str:
        """What people read about its encoder."""
        return self.encoder.label if self.encoder is not None else "none"

    def check_encoder(self, identity: EncoderIdentity) -> None:
        if self.encoder is None:
            raise EncoderMismatchError(f"model {self.name or ''} embeds nothing: it has no encoder")
        self.encoder.check_compatible(identity)

    def decision_function(self, embeddings: np.ndarray) -> np.ndarray:
        """Scores of frame embeddings (embedding detectors only; other detectors score sources)."""
        if not isinstance(self.detector, BaseDetector) or self.encoder is None:
            raise VlmAnomalyError(f"detector {self.detector.name!r} scores videos, not embeddings: "
                                  "use Pipeline.score")
        if embeddings.ndim == 2 and embeddings.shape[1] != self.encoder.dim:
            raise EncoderMismatchError(
                f"embeddings have dimension {embeddings.shape[1]} but model {self.name or ''} expects "
                f"{self.encoder.dim} ({self.encoder.label})"
            )
        return self.detector.decision_function(embeddings)

    def score(
        self, embeddings: np.ndarray, *, threshold: float | None = None, window: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw scores, centred moving average, anomaly flags of the smoothed score)."""
        raw = self.decision_function(embeddings)
        smooth = moving_average(raw, window or self.smoothing_window)
        t = self.threshold if threshold is None else threshold
        return raw, smooth, smooth < t

    def predict_one(self, embedding: np.ndarray) -> tuple[float, bool]:
        """Score one embedding (live use): (raw score, is anomaly)."""
        s = float(self.decision_function(np.asarray(embedding).reshape(1, -1))[0])
        return s, s < self.threshold

    def nearest_training_frames(self, embeddings: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``train_refs`` of the most similar training frames, and their cosine."""
        if self.train_embeddings is None or len(self.train_embeddings) == 0:
            raise ValueError("model holds no training embeddings")
        sims = np.asarray(embeddings, np.float32) @ self.train_embeddings.astype(np.float32).T
        idx = np.argsort(-sims, axis=1)[:, :k]
        return idx, np.take_along_axis(sims, idx, axis=1)

    # -- serialisation (JSON + arrays; the store does the file handling) ------------------

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        det_meta, det_arrays = self.detector.get_state()
        meta = {
            "format": "vlm-anomaly-model",
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "encoder": self.encoder.as_dict() if self.encoder is not None else None,
            "detector": det_meta,
            "prompts": list(self.prompts),
            "expected_objects": list(self.expected_objects),
            "training": {
                "videos": [v.as_dict() for v in self.videos],
                "frames": self.n_frames,
                "interval_ms": self.interval_ms,
                "fit_interval_ms": self.training_interval_ms,
            },
            "smoothing_window": self.smoothing_window,
            "threshold": self.threshold,
            "extra": self.extra,
            "normal_additions": [dict(a) for a in self.normal_additions],
        }
        arrays = {f"detector.{k}": v for k, v in det_arrays.items()}
        if self.train_embeddings is not None:
            arrays["train_embeddings"] = self.train_embeddings.astype(np.float16)
        if self.train_refs is not None:
            arrays["train_refs"] = self.train_refs.astype(np.int64)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> AnomalyModel:
        """Rebuild from :meth:`to_state`; raises ValueError/KeyError/TypeError on bad content."""
        if meta.get("format") != "vlm-anomaly-model":
            raise ValueError("not a vlm-anomaly model")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format version {meta.get('format_version')!r}")
        enc = None if meta["encoder"] is None else EncoderIdentity.from_dict(meta["encoder"])
        det_meta = dict(meta["detector"])
        te, refs = arrays.get("train_embeddings"), arrays.get("train_refs")
        if enc is not None and enc.backend == LEGACY_NO_ENCODER:  # motion alone, saved with a 1-d stand-in
            enc, te, refs, det_meta["n_features_in"] = None, None, None, 0
        if enc is not None and not 0 < enc.dim <= 65536:
            raise ValueError("encoder dim out of range")
        if int(det_meta["n_features_in"]) != (enc.dim if enc is not None else 0):
            raise ValueError("detector dimension does not match the encoder's")
        det_cls = get_detector_class(str(det_meta["name"]))
        det_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("detector.")}
        detector = det_cls.from_state(det_meta, det_arrays)
        tr = meta.get("training", {})
        videos = [
            TrainingVideo(str(v["name"]), str(v["sha256"]), int(v["frames"]), float(v["duration_s"]))
            for v in tr.get("videos", [])
        ]
        if te is not None and (enc is None or te.ndim != 2 or te.shape[1] != enc.dim or not np.all(np.isfinite(te))):
            raise ValueError("train_embeddings have the wrong shape or invalid values")
        if refs is not None and (te is None or refs.shape != (len(te), 3)):
            raise ValueError("train_refs do not match train_embeddings")
        threshold = float(meta.get("threshold", 0.0))
        if not np.isfinite(threshold) or not np.isfinite(detector.threshold_):
            raise ValueError("threshold is not finite")
        interval_ms = int(tr.get("interval_ms", 500))
        if not 0 <= interval_ms <= 3_600_000:
            raise ValueError(f"interval_ms {interval_ms} out of range")
        fit_interval_ms = int(tr.get("fit_interval_ms", interval_ms))
        if not 0 <= fit_interval_ms <= 3_600_000:
            raise ValueError(f"fit_interval_ms {fit_interval_ms} out of range")
        window = int(meta.get("smoothing_window", 5))
        if not 1 <= window <= 100_000:
            raise ValueError(f"smoothing_window {window} out of range")
        additions = meta.get("normal_additions", [])
        if not isinstance(additions, list) or not all(isinstance(a, dict) and isinstance(a.get("id"), str)
                                                      for a in additions):
            raise ValueError("normal_additions is malformed")
        extra = meta.get("extra", {})
        if not isinstance(extra, dict):
            raise ValueError("extra is malformed")
        for key in ("target_false_alarm", "heldout_flagged"):  # shown as percentages by every shell
            v = extra.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                raise ValueError(f"extra.{key} {v!r} is not a share between 0 and 1")
        return cls(normal_additions=[dict(a) for a in additions], encoder=enc, detector=detector,
                   prompts=[str(p) for p in meta.get("prompts", [])],
                   expected_objects=[str(p) for p in meta.get("expected_objects", [])], videos=videos,
                   interval_ms=interval_ms, fit_interval_ms=fit_interval_ms,
                   smoothing_window=window, threshold=threshold,
                   created=str(meta.get("created", "")), name=str(meta.get("name", "")), train_embeddings=te,
                   train_refs=refs, extra=dict(extra))

    @property
    def training_interval_ms(self) -> int:
        """The sampling of the training clips (models saved before it was recorded: the scoring one)."""
        return self.interval_ms if self.fit_interval_ms is None else self.fit_interval_ms

    def summary(self) -> dict:
        """Metadata shown by ``models show`` and the dashboard (no arrays)."""
        meta, arrays = self.to_state()
        meta["arrays"] = {k: list(v.shape) for k, v in arrays.items()}
        return meta
