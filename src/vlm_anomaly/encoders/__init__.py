"""Image (and text) encoders behind one interface: OpenCLIP and the offline EfficientNet-Lite0.

Names load on first use (PEP 562), so importing a light submodule (``identity``, ``prompts``,
``preprocess``) does not import PyTorch.
"""

from .identity import Description, EncoderIdentity
from .prompts import build_prompts

_LAZY = {
    "BACKENDS": ".factory", "create_encoder": ".factory", "encoder_for_identity": ".factory",
    "resolve_backend": ".factory", "encoder_from_settings": ".factory", "encoder_from_options": ".factory",
    "encoder_options": ".factory", "Encoder": ".base", "Preprocessing": ".preprocess",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BACKENDS",
    "Description",
    "Encoder",
    "EncoderIdentity",
    "Preprocessing",
    "build_prompts",
    "create_encoder",
    "encoder_for_identity",
    "encoder_from_options",
    "encoder_from_settings",
    "encoder_options",
    "resolve_backend",
]
