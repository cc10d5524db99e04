"""Settings: built-in defaults < config file < environment (``VLM_ANOMALY_*``) < explicit overrides (CLI flags).

Why one object: the CLI, the dashboard and the REST API must agree on every default, so they all
call :func:`load_settings` and only override what their user set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

ENV_PREFIX = "VLM_ANOMALY_"
DEFAULT_CONFIG_FILES = ("vlm-anomaly.yaml", "config.yaml")


def default_home() -> Path:
    """Where models, caches and results live unless configured otherwise."""
    return Path(os.environ.get("VLM_ANOMALY_HOME", Path.home() / ".vlm-anomaly"))


class Settings(BaseModel):
    """Every tunable of the system, validated.

    Example:
        >>> s = load_settings(overrides={"interval_ms": 250})
        >>> s.interval_ms, s.batch_size
        (250, 16)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: Path = Field(default_factory=default_home)
    models_dir: Path | None = None
    cache_dir: Path | None = None

    # sampling: 0 means every frame; otherwise 100..2000 ms
    interval_ms: int = 500
    max_frames: int = 0  # 0 = no limit per job
    max_side: int = 1920  # frames larger than this are downscaled at decode time

    # encoder
    encoder: Literal["auto", "openclip", "efficientnet"] = "auto"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    clip_weights: Path | None = None  # local weights file (offline machines)
    device: str = "auto"
    batch_size: int = 16
    threads: int = 0  # 0 = choose for this machine

    # descriptions
    expected_objects: list[str] = Field(default_factory=list)
    top_k: int = 3

    # detector
    detector: str = "ocsvm"
    nu: float = 0.1
    gamma: str | float = "scale"
    smoothing_window: int = 5
    threshold: float = 0.0

    # caches
    embedding_cache: bool = True

    # speed (issue 5): where the image tower runs; ONNX exports are cached under cache_path/onnx/
    runtime: Literal["torch", "onnx", "onnx-int8"] = "torch"

    log_level: str = "WARNING"

    @field_validator("interval_ms")
    @classmethod
    def _interval(cls, v: int) -> int:
        if v != 0 and not 100 <= v <= 2000:
            raise ValueError("interval_ms must be 0 (every frame) or between 100 and 2000")
        return v

    @field_validator("batch_size", "smoothing_window", "top_k")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("nu")
    @classmethod
    def _nu(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError("nu must be in (0, 1]")
        return v

    @field_validator("expected_objects", mode="before")
    @classmethod
    def _objects(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else Path(self.home) / "models"

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.home) / "cache"


def _env_values() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        out[name] = raw
        if field.annotation in (list[str],):
            out[name] = raw
    return out


def find_config_file() -> Path | None:
    """``$VLM_ANOMALY_CONFIG`` first, then ``vlm-anomaly.yaml``/``config.yaml`` in the working dir."""
    explicit = os.environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        return Path(explicit)
    for name in DEFAULT_CONFIG_FILES:
        p = Path(name)
        if p.is_file():
            return p
    return None


def load_settings(
    config_file: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> Settings:
    """Merge defaults, a YAML file, the environment and explicit overrides (``None`` values ignored)."""
    values: dict[str, Any] = {}
    path = Path(config_file) if config_file else find_config_file()
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        values.update(data)
    values.update(_env_values())
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {loc}: {first['msg']}") from None
