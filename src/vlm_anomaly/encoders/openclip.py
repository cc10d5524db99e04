"""OpenCLIP image and text towers: embeddings and zero-shot descriptions.

Weights come from the model hub on first use (then cached), from a local file, or - for tests and
timing - a random initialisation (``pretrained="none"``, seeded so every process agrees).
"""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from ..atomic import atomic_save_npy
from ..errors import EncoderUnavailableError
from .base import Description, Encoder, EncoderIdentity, file_sha256, pick_device, topk_descriptions
from .preprocess import Preprocessing
from .prompts import build_prompts, prompt_texts, prompts_key

log = logging.getLogger(__name__)

RANDOM_TAGS = {"", "none", "random"}
CLIP_MODELS = ("ViT-B-32", "ViT-B-16", "ViT-L-14")
CLIP_PRETRAINED = ("openai", "laion400m_e32", "laion2b_s34b_b79k")


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 1.5) -> bool:
    """Decide fast whether the model hub can be reached (remembered for the process).

    Why: a download attempt on an offline machine hangs for ~50 s before failing.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def cached_weights(model: str, pretrained: str) -> str | None:
    """Path of already downloaded hub weights for (model, pretrained), or None."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        return None
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            parts = hub.strip("/").split("/")
            repo = "/".join(parts[:2])
            names = [parts[2]] if len(parts) > 2 else []
            names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            for name in names:
                p = try_to_load_from_cache(repo, name)
                if isinstance(p, str) and os.path.isfile(p):
                    return p
        except Exception:  # noqa: BLE001 - any cache trouble means "not cached"
            return None
    url = cfg.get("url", "")
    if url:
        p = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if p.is_file():
            return str(p)
    return None


def clip_weights_available(model: str, pretrained: str, weights: str | Path | None = None) -> bool:
    if weights:
        return Path(weights).is_file()
    if pretrained.lower() in RANDOM_TAGS:
        return True
    return cached_weights(model, pretrained) is not None or hub_reachable()


class OpenClipEncoder(Encoder):
    """CLIP embeddings plus zero-shot descriptions from action prompts (prompt embeddings cached)."""

    int8_supported = True

    def __init__(self, model: str = "ViT-B-32", pretrained: str = "openai", *, weights: str | Path | None = None,
                 device: str = "auto", batch_size: int = 16, prompts: list[str] | None = None,
                 cache_dir: str | Path | None = None):
        import open_clip

        self.device = pick_device(device)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        tag = pretrained or "none"
        weights_hash = ""
        if model not in open_clip.list_models():
            raise EncoderUnavailableError(f"unknown OpenCLIP model {model!r}")
        if weights:
            wpath = Path(weights)
            if not wpath.is_file():
                raise EncoderUnavailableError(f"weights file {wpath} not found")
            weights_hash = file_sha256(wpath)
            source: str | None = str(wpath)
        elif tag.lower() in RANDOM_TAGS:
            tag = "none"
            source = None
            torch.manual_seed(0)  # every process builds the same random tower
        else:
            if not clip_weights_available(model, tag):
                raise EncoderUnavailableError(f"OpenCLIP weights {model}/{tag} are not cached and the model hub is "
                                              "unreachable; set clip_weights to a local file or use --encoder "
                                              "efficientnet")
            source = tag
        try:
            net, _, _ = open_clip.create_model_and_transforms(model, pretrained=source, device=self.device,
                                                              weights_only=True)
        except TypeError:
            net, _, _ = open_clip.create_model_and_transforms(model, pretrained=source, device=self.device)
        except Exception as exc:  # noqa: BLE001 - hub/file errors of many kinds
            raise EncoderUnavailableError(f"cannot load OpenCLIP {model}/{tag}: {exc}") from None
        net.eval()
        if self.device.type == "cuda":
            net = net.half()
        self.net = net
        self.tokenizer = open_clip.get_tokenizer(model)
        size = net.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else int(size)
        mean = getattr(net.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        std = getattr(net.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self.preprocess = Preprocessing(size=size, mean=tuple(mean), std=tuple(std))
        with torch.inference_mode():
            dim = int(net.encode_image(torch.zeros(1, 3, size, size, device=self.device,
                                                    dtype=next(net.parameters()).dtype)).shape[-1])
        self.identity = EncoderIdentity(backend="openclip", model=model, pretrained="file" if weights else tag, dim=dim,
                                        weights_sha256=weights_hash, preprocessing=self.preprocess.as_dict())
        self.logit_scale = float(net.logit_scale.exp().item()) if hasattr(net, "logit_scale") else 100.0
        self._text_cache: dict[str, np.ndarray] = {}
        self.prompts = list(prompts) if prompts else build_prompts(None)

    @property
    def supports_text(self) -> bool:
        return True

    def _forward_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encode_image(x.to(next(self.net.parameters()).dtype))

    def image_module(self) -> torch.nn.Module:
        return _ImageTower(self.net.visual).float().cpu()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings (N, dim)."""
        with torch.inference_mode():
            tok = self.tokenizer(texts).to(self.device)
            feats = self.net.encode_text(tok).float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return feats.cpu().numpy().astype(np.float32)

    def prompt_embeddings(self, labels: list[str]) -> np.ndarray:
        """Text embeddings of the prompt set, computed once per encoder and prompt set.

        Cached in memory and, when a cache folder is set, on disk (keyed by encoder and prompts).
        """
        key = f"{self.identity.key}-{prompts_key(labels)}"
        if key in self._text_cache:
            return self._text_cache[key]
        path = self.cache_dir / "text" / f"{key}.npy" if self.cache_dir else None
        emb = None
        if path is not None:
            try:
                emb = np.load(path, allow_pickle=False)
                if emb.shape != (len(labels), self.dim):
                    emb = None
            except (OSError, ValueError, EOFError, AttributeError):
                emb = None
        if emb is None:
            emb = self.encode_text(prompt_texts(labels))
            if path is not None:
                try:
                    atomic_save_npy(path, emb)
                except OSError as exc:  # read-only or full cache: work on without it
                    log.warning("prompt-embedding cache not written (%s): %s", path.parent, exc)
        self._text_cache[key] = emb
        return emb

    def text_similarity(self, embeddings: np.ndarray, labels: list[str]) -> np.ndarray:
        """Softmax over prompts of the scaled cosine similarity (N, len(labels))."""
        text = self.prompt_embeddings(labels)
        return softmax(self.logit_scale * embeddings @ text.T, axis=1)

    def describe(self, embeddings: np.ndarray, *, top_k: int = 3, prompts: list[str] | None = None
                 ) -> list[Description]:
        labels = list(prompts) if prompts else self.prompts
        if len(embeddings) == 0:
            return []
        return topk_descriptions(self.text_similarity(embeddings, labels), labels, top_k)


class _ImageTower(torch.nn.Module):
    """The exportable image tower: pixels -> CLIP image features (the visual tower alone)."""

    def __init__(self, visual: torch.nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)
