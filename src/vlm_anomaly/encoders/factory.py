"""One factory over the encoder backends, so every interface builds encoders the same way."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EncoderUnavailableError
from .identity import EncoderIdentity

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Encoder

log = logging.getLogger(__name__)

BACKENDS = ("auto", "openclip", "efficientnet")
#: what one embedding describes: the whole frame, or the whole frame plus overlapping tiles each
#: embedded on its own (see tiles.py)
FEATURES = ("frame", "tiles")


def resolve_backend(backend: str, clip_model: str, clip_pretrained: str, clip_weights=None) -> str:
    """``auto`` → OpenCLIP when its weights can be had, else the offline backbone (with a notice)."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise EncoderUnavailableError(f"unknown encoder {backend!r}; choose from {', '.join(BACKENDS)}")
        return backend
    from .openclip import clip_weights_available

    if clip_weights_available(clip_model, clip_pretrained, clip_weights):
        return "openclip"
    log.warning("OpenCLIP %s/%s weights unavailable offline: using the offline EfficientNet-Lite0 backbone",
                clip_model, clip_pretrained)
    return "efficientnet"


def create_encoder(backend: str = "auto", *, clip_model: str = "ViT-B-32", clip_pretrained: str = "openai",
                   clip_weights: str | Path | None = None, device: str = "auto", batch_size: int = 16,
                   prompts: list[str] | None = None, cache_dir: str | Path | None = None, features: str = "frame",
                   runtime: str = "torch", threads: int = 0, tiles: tuple[int, int, float] = (2, 3, 0.25)) -> Encoder:
    """Build an encoder by backend name; ``runtime`` picks where its image forward runs.

    Example:
        >>> enc = create_encoder("openclip", clip_pretrained="none")  # random weights, offline
        >>> enc.dim
        512
    """
    if features not in FEATURES:
        raise EncoderUnavailableError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")
    kind = resolve_backend(backend, clip_model, clip_pretrained, clip_weights)
    if kind == "openclip":
        from .openclip import OpenClipEncoder

        enc: Encoder = OpenClipEncoder(clip_model, clip_pretrained, weights=clip_weights, device=device,
                                       batch_size=batch_size, prompts=prompts, cache_dir=cache_dir)
    else:
        from .efficientnet import EfficientNetEncoder

        enc = EfficientNetEncoder(device=device, batch_size=batch_size)
    enc = enc.use_runtime(runtime, cache_dir=cache_dir, threads=threads)
    if features == "tiles":
        from .tiles import TiledEncoder

        rows, cols, overlap = tiles
        return TiledEncoder(enc, rows=int(rows), cols=int(cols), overlap=float(overlap))
    return enc


def _tile_grid(identity: EncoderIdentity) -> tuple[int, int, float]:
    """(rows, cols, overlap) of a tiled model, refused clearly when the saved grid is malformed."""
    tiles = identity.preprocessing.get("tiles")
    try:
        if not (isinstance(tiles, list) and len(tiles) == 3):
            raise TypeError
        return int(tiles[0]), int(tiles[1]), float(tiles[2])
    except (TypeError, ValueError):
        raise EncoderUnavailableError(f"model names tiled features with an invalid tile grid {tiles!r}") from None


def encoder_for_identity(identity: EncoderIdentity, **kwargs) -> Encoder:
    """Rebuild the encoder a model was trained with (scoring must always use that same encoder)."""
    # what one embedding describes is the model's, never the current settings'
    features = str(identity.preprocessing.get("features", "frame"))
    kwargs["features"] = features
    if features == "tiles":
        kwargs["tiles"] = _tile_grid(identity)
    if identity.backend == "efficientnet":
        enc = create_encoder("efficientnet", **kwargs)
    elif identity.backend == "openclip":
        if identity.pretrained == "file" and not kwargs.get("clip_weights"):
            raise EncoderUnavailableError(
                "this model was trained with a local OpenCLIP weights file: pass it with --clip-weights"
            )
        kwargs["clip_model"] = identity.model
        if identity.pretrained != "file":
            kwargs["clip_pretrained"] = identity.pretrained
            kwargs.pop("clip_weights", None)
        enc = create_encoder("openclip", **kwargs)
    else:
        raise EncoderUnavailableError(f"unknown encoder backend {identity.backend!r} in model")
    identity.check_compatible(enc.identity)
    return enc


def encoder_options(settings: Settings) -> dict[str, Any]:
    """Every encoder option the settings hold, backend included (JSON-safe, so it is a cache key too)."""
    s = settings
    return {
        "backend": s.encoder,
        "clip_model": s.clip_model,
        "clip_pretrained": s.clip_pretrained,
        "clip_weights": str(s.clip_weights) if s.clip_weights else None,
        "device": s.device,
        "batch_size": s.batch_size,
        "cache_dir": str(s.cache_path),
        "features": s.features,
        "runtime": s.runtime,
        "threads": s.threads,
        "tiles": [s.tile_rows, s.tile_cols, s.tile_overlap],
    }


def encoder_from_options(options: dict[str, Any], identity: EncoderIdentity | None = None) -> Encoder:
    """The configured encoder (``identity`` None) or the one a model was trained with, from
    :func:`encoder_options` output."""
    kwargs = dict(options)
    backend = kwargs.pop("backend")
    kwargs["tiles"] = tuple(kwargs["tiles"])
    return create_encoder(backend, **kwargs) if identity is None else encoder_for_identity(identity, **kwargs)


def encoder_from_settings(settings: Settings, identity: EncoderIdentity | None = None) -> Encoder:
    """The one way every shell builds an encoder from settings: the configured one, or (given a
    model's ``identity``) the encoder that model was trained with, with the settings' device,
    runtime, threads, weights file and cache."""
    return encoder_from_options(encoder_options(settings), identity)
