"""Image (and text) encoders behind one interface: OpenCLIP and the offline EfficientNet-Lite0."""

from .base import Description, Encoder, EncoderIdentity
from .factory import BACKENDS, create_encoder, encoder_for_identity, resolve_backend
from .preprocess import Preprocessing
from .prompts import build_prompts

__all__ = [
    "BACKENDS",
    "Description",
    "Encoder",
    "EncoderIdentity",
    "Preprocessing",
    "build_prompts",
    "create_encoder",
    "encoder_for_identity",
    "resolve_backend",
]
