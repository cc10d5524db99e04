"""Settings: built-in defaults < config file < environment (``VLM_ANOMALY_*``) < explicit overrides (CLI flags).

Why one object: the CLI, the dashboard and the REST API must agree on every default, so they all
call :func:`load_settings` and only override what their user set.

Why sections on top of flat keys: a component should see the few settings it uses, not all of
them. The flat keys stay the storage and the names users write (YAML, ``VLM_ANOMALY_<KEY>``, CLI
flags); :data:`SECTIONS` groups them (sampling, encoder, detector, events, alerts, api, ray,
service), a YAML file may nest them under their section, and each section has a typed, frozen
view (``settings.sampling``, ``settings.alerts``, ...) that components take instead of everything.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .credentials import PasswordHash
from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "VLM_ANOMALY_"
#: URL schemes a watched source may have (network streams; never local-file protocols)
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
DEFAULT_CONFIG_FILES = ("vlm-anomaly.yaml", "config.yaml")


def default_home() -> Path:
    """Where models, caches and results live unless configured otherwise."""
    return Path(os.environ.get("VLM_ANOMALY_HOME", Path.home() / ".vlm-anomaly"))


class CameraSpec(BaseModel):
    """One camera of the service file: a name (Home Assistant device, MQTT topics), a source, a model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    source: str | None = None  # None: a Frigate camera of that name (frigate_url) with its own model
    model: str | None = None  # None: watch_model


# -- section views --------------------------------------------------------------------------
# Each is a frozen copy of its section's flat keys (same names, same types), built by
# ``Settings.<view>``; its fields ARE the section's keys (SECTIONS is derived from them).


@dataclass(frozen=True)
class SamplingSettings:
    """Which frames are read and how: interval, size and length limits, stream reconnects."""

    interval_ms: int
    train_interval_ms: int | None
    max_frames: int
    max_side: int
    max_duration_s: float
    stream_stall_timeout_s: float
    stream_backoff_initial_s: float
    stream_backoff_max_s: float


@dataclass(frozen=True)
class EncoderSettings:
    """The image/text encoder, where it runs, and the zero-shot descriptions it makes."""

    encoder: str
    clip_model: str
    clip_pretrained: str
    clip_weights: Path | None
    device: str
    batch_size: int
    threads: int
    runtime: str
    embedding_cache: bool
    expected_objects: list[str]
    top_k: int


@dataclass(frozen=True)
class DetectorSettings:
    """The detector, its parameters and the features it is fitted on."""

    detector: str
    nu: float
    gamma: str | float
    smoothing_window: int
    threshold: float
    target_false_alarm: float
    motion_appearance: bool
    motion_crop_encoder: str
    features: str
    tile_rows: int
    tile_cols: int
    tile_overlap: float


@dataclass(frozen=True)
class EventSettings:
    """How scores become events, where events are kept, and for how long."""

    events_db_url: str | None
    events_dir: Path | None
    event_enter_threshold: float | None
    event_exit_threshold: float | None
    event_hysteresis: float
    event_min_duration_s: float
    event_cooldown_s: float
    event_smoothing_window: int
    event_end_smoothing_s: float
    clip_seconds: float
    retention_days: float
    retention_max_mb: float
    retention_interval_s: float


@dataclass(frozen=True)
class AlertSettings:
    """Where events are announced (webhooks, MQTT, Home Assistant) and the known-bad prompts."""

    webhook_urls: list[str]
    webhook_retries: int
    webhook_timeout_s: float
    mqtt_url: str | None
    mqtt_topic_prefix: str
    ha_discovery: bool
    ha_discovery_prefix: str
    alert_prompts: list[str]
    alert_prompt_threshold: float
    alert_prompt_weight: float


@dataclass(frozen=True)
class ApiSettings:
    """The REST API: where it listens, who may call it, what it may open and how much."""

    api_host: str
    api_port: int
    api_tokens: list[str]
    allowed_media_dirs: list[Path]
    allowed_url_schemes: list[str]
    allowed_url_hosts: list[str]
    allowed_cameras: list[int]
    max_watchers: int
    max_upload_mb: int


@dataclass(frozen=True)
class RaySettings:
    """Whether batches and sources run on Ray, and which cluster."""

    ray: bool
    ray_address: str | None


@dataclass(frozen=True)
class ServiceSettings:
    """What `service`/`watch` watch by name (cameras, Frigate) and where the dashboard listens."""

    cameras: list[CameraSpec]
    watch_model: str | None
    watch_processes: int
    frigate_url: str | None
    frigate_role: str
    frigate_rtsp_url: str
    frigate_events: bool
    ui_port: int
    ui_address: str
    dashboard_password_hash: str | None
    dashboard_insecure_no_auth: bool


#: YAML section name -> its view's class; a section's keys are its view's fields
SECTIONS: dict[str, type] = {
    "sampling": SamplingSettings,
    "encoder": EncoderSettings,
    "detector": DetectorSettings,
    "events": EventSettings,
    "alerts": AlertSettings,
    "api": ApiSettings,
    "ray": RaySettings,
    "service": ServiceSettings,
}
#: keys that belong to no section (paths and logging): top level only
GENERAL_KEYS = ("home", "models_dir", "cache_dir", "log_level")

#: the last commit holding the detectors, feature mode and keys removed because they lost on the
#: project's own UCSD Ped2 table (docs/results.md keeps their rows and reports)
REMOVED_IN = "793ab22"
#: detectors no longer offered (a config or model naming one gets a clear error, not a stack trace)
REMOVED_DETECTORS = ("attributes", "ensemble", "gaussian", "iforest", "knn", "padim", "patchcore")
#: what to use instead, in words (the registry lists the exact names, plugins included)
ALTERNATIVES = "motion (the default), ocsvm, or patch-knn with features: tiles"
#: keys of removed detectors: still accepted in files and saved parameters (ignored, with a warning)
REMOVED_KEYS = ("knn_k", "ensemble", "attr_k", "attr_crop_size", "attr_flow_method", "attr_fused")


def removed_detector_message(name: str, alternatives: str) -> str:
    """Why ``name`` is refused and what to use instead."""
    return (f"detector {name!r} was removed (it lost to others on UCSD Ped2, see docs/results.md; "
            f"last in commit {REMOVED_IN}); choose from {alternatives}")


def section_keys(section: str) -> tuple[str, ...]:
    """The flat keys of one section, in their documented order."""
    return tuple(f.name for f in fields(SECTIONS[section]))


def _view(settings: Settings, cls: type):
    # copies of lists, so a view never aliases (and cannot change) the settings it came from
    return cls(**{f.name: (list(v) if isinstance(v := getattr(settings, f.name), list) else v)
                  for f in fields(cls)})


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
    # motion (default): per-location motion + moving-shape densities, calibrated; ocsvm: the seed's
    # One-Class SVM on frame embeddings; see `vlm-anomaly evaluate` and docs/motion.md
    detector: str = "motion"
    nu: float = 0.1
    gamma: str | float = "scale"
    smoothing_window: int = 5
    threshold: float = 0.0
    # motion detector: share of held-out normal frames its calibrated threshold may flag
    target_false_alarm: float = Field(0.01, gt=0.0, lt=0.5)
    # motion detector: also model what moving regions look like (crops through the encoder)
    motion_appearance: bool = True
    # motion detector: which encoder embeds the regions' crops. "efficientnet": the offline backbone
    # at 64 px (about 2 ms a crop on 2 cores); "configured": the configured encoder (OpenCLIP at
    # 224 px costs 50-140 ms a crop there, but its embeddings align with text prompts)
    motion_crop_encoder: Literal["efficientnet", "configured"] = "efficientnet"

    # evaluation and detection quality
    train_interval_ms: int | None = None  # sampling of training clips; None = interval_ms
    # frame: one embedding per frame; tiles: the whole frame + tile_rows x tile_cols overlapping
    # tiles, each embedded (small objects), for the patch-knn detector
    features: Literal["frame", "tiles"] = "frame"
    tile_rows: int = Field(2, ge=1, le=8)
    tile_cols: int = Field(3, ge=1, le=8)
    tile_overlap: float = Field(0.25, ge=0.0, lt=0.9)

    # caches
    embedding_cache: bool = True

    # resource limits (robustness): unattended jobs must not exhaust memory, disk or time.
    max_upload_mb: int = Field(default=500, ge=1, le=100000)  # per uploaded video (UI/API); 413 above
    # files/folders declaring a longer length are refused before decoding; when the length only
    # shows while decoding, they are truncated at the limit with a warning (0 = no limit)
    max_duration_s: float = 0
    # speed: where the image tower runs; ONNX exports are cached under cache_path/onnx/
    runtime: Literal["torch", "onnx", "onnx-int8"] = "torch"

    log_level: str = "WARNING"

    # dashboard (streamlit UI)
    ui_port: int = Field(default=8501, ge=1, le=65535)

    # -- live monitoring service: watch, events, alerts, REST API, Ray -------------------------
    events_db_url: str | None = None  # any SQLAlchemy URL; default sqlite:///<home>/events.db
    events_dir: Path | None = None  # snapshots and clips; default <home>/events
    # smoothed score below enter opens an event, above exit closes it; by default enter is
    # event_hysteresis below the model's threshold and exit half-way back (frames that hover at
    # the boundary never flicker events)
    event_enter_threshold: float | None = None
    event_exit_threshold: float | None = None
    event_hysteresis: float = 0.1
    event_min_duration_s: float = 1.0  # shorter dips are not events
    event_cooldown_s: float = 2.0  # a new dip this soon after an end continues the same event
    event_smoothing_window: int = 0  # causal window in samples; 0 = the model's smoothing window
    # events end on a shorter causal window: about this many seconds of samples (never more than the
    # window above), so they end soon after the scene returns to normal at any sampling interval
    event_end_smoothing_s: float = Field(default=1.0, ge=0)
    clip_seconds: float = 4.0  # an event's MP4 clip starts clip_seconds/2 before it, runs to its end
    retention_days: float = 30.0  # events older than this are deleted (0 = keep)
    retention_max_mb: float = 1024.0  # snapshots + clips above this: oldest events deleted (0 = no limit)
    retention_interval_s: float = Field(default=300.0, gt=0)  # how often the retention job runs
    stream_stall_timeout_s: float = 5.0  # no frame for this long = stalled: reconnect
    stream_backoff_initial_s: float = 0.5
    stream_backoff_max_s: float = 30.0
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_retries: int = 3
    webhook_timeout_s: float = 5.0
    mqtt_url: str | None = None  # mqtt://[user:password@]host[:port]
    mqtt_topic_prefix: str = "vlm-anomaly"
    # Home Assistant / Frigate / service
    ha_discovery: bool = True  # with mqtt_url: announce each watched camera to Home Assistant
    ha_discovery_prefix: str = "homeassistant"  # Home Assistant's MQTT discovery prefix
    frigate_url: str | None = None  # http://frigate:5000: watch Frigate's cameras through its restreams
    frigate_role: str = "detect"  # which input of each Frigate camera (its role) is watched
    frigate_rtsp_url: str = "rtsp://{host}:8554/{stream}"  # Frigate's restream URL ({host}, {stream}, {camera})
    frigate_events: bool = True  # each anomaly of a Frigate camera also becomes a Frigate event (its review UI)
    cameras: list[CameraSpec] = Field(default_factory=list)  # what `watch`/`service` watch by name
    watch_model: str | None = None  # model of cameras that name none (service, watch without --model)
    api_host: str = "127.0.0.1"  # where `service` serves the REST API
    api_port: int = Field(default=8000, ge=1, le=65535)
    ui_address: str = "localhost"  # where `service` serves the dashboard (0.0.0.0 in a container)
    # the dashboard's login: a scrypt hash from `vlm-anomaly ui --hash-password` (the api_tokens open
    # it too); off loopback the dashboard refuses to start without one unless insecure_no_auth is set
    dashboard_password_hash: str | None = None
    dashboard_insecure_no_auth: bool = False  # serve a non-loopback address with no login (trusted LAN)
    alert_prompts: list[str] = Field(default_factory=list)  # known-bad situations, CLIP encoders only
    alert_prompt_threshold: float = 0.5  # probability of a bad prompt that "fires"
    alert_prompt_weight: float = 1.0  # fused score = one-class score - weight * bad-prompt probability
    api_tokens: list[str] = Field(default_factory=list)  # Bearer tokens of the REST API
    # what the REST API's POST /sources may open; nothing unless configured (the CLI's `watch`
    # runs as its user and opens what it is given)
    allowed_media_dirs: list[Path] = Field(default_factory=list)  # their files and sub-folders
    allowed_url_schemes: list[str] = Field(default_factory=list)  # e.g. [rtsp, https]
    allowed_url_hosts: list[str] = Field(default_factory=list)  # cam*.lan, 192.168.1.0/24, *
    allowed_cameras: list[int] = Field(default_factory=list)  # webcam indexes
    max_watchers: int = Field(default=8, ge=1, le=1000)  # sources watched at once (API and watch)
    # `watch`/`service`: worker processes the cameras are spread over (0 = one per core, 1 = all in
    # one process); one Python process cannot keep two cores busy
    watch_processes: int = Field(default=0, ge=0, le=64)
    ray: bool = False  # score batches / watch sources on Ray
    ray_address: str | None = None  # None = start a local Ray; "auto" or ray://host:port = a cluster

    @field_validator(
        "webhook_urls",
        "alert_prompts",
        "api_tokens",
        "allowed_media_dirs",
        "allowed_url_schemes",
        "allowed_url_hosts",
        "allowed_cameras",
        mode="before",
    )
    @classmethod
    def _csv_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("allowed_url_schemes", mode="after")
    @classmethod
    def _stream_schemes(cls, v: list[str]) -> list[str]:
        # local-file protocols (file:, pipe:, concat:, ...) would bypass allowed_media_dirs
        v = [s.lower().removesuffix("://") for s in v]
        bad = [s for s in v if s not in STREAM_SCHEMES]
        if bad:
            raise ValueError(f"not a stream URL scheme: {', '.join(bad)} "
                             f"(allowed: {', '.join(STREAM_SCHEMES)})")
        return v

    @field_validator("dashboard_password_hash", mode="after")
    @classmethod
    def _password_hash(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            PasswordHash.parse(v)
        except ConfigError as exc:  # a ValueError's message is what the settings loader shows
            raise ValueError(str(exc)) from None
        return v.strip()

    @field_validator("allowed_media_dirs", mode="after")
    @classmethod
    def _expand_dirs(cls, v: list[Path]) -> list[Path]:
        return [Path(p).expanduser() for p in v]

    @property
    def events_path(self) -> Path:
        return Path(self.events_dir).expanduser() if self.events_dir else Path(self.home) / "events"

    @property
    def events_url(self) -> str:
        return self.events_db_url or f"sqlite:///{Path(self.home).expanduser() / 'events.db'}"

    @field_validator("home", "models_dir", "cache_dir", "clip_weights", mode="after")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return Path(v).expanduser() if v is not None else None

    @field_validator("interval_ms", "train_interval_ms")
    @classmethod
    def _interval(cls, v: int | None) -> int | None:
        if v is not None and v != 0 and not 100 <= v <= 2000:
            raise ValueError("interval_ms must be 0 (every frame) or between 100 and 2000")
        return v

    @field_validator("batch_size", "smoothing_window", "top_k")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("max_upload_mb", "max_duration_s", "max_frames", "max_side")
    @classmethod
    def _non_negative(cls, v):
        if v < 0:
            raise ValueError("must be 0 (no limit) or positive")
        return v

    @field_validator("nu")
    @classmethod
    def _nu(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError("nu must be in (0, 1]")
        return v

    @field_validator("detector")
    @classmethod
    def _detector(cls, v: str) -> str:
        if v in REMOVED_DETECTORS:
            raise ValueError(removed_detector_message(v, ALTERNATIVES))
        return v

    @field_validator("features", mode="before")
    @classmethod
    def _features(cls, v: Any) -> Any:
        if v == "patches":
            raise ValueError("features 'patches' was removed (it lost to tiles on UCSD Ped2, see "
                             f"docs/results.md; last in commit {REMOVED_IN}); choose from frame, tiles")
        return v

    @field_validator("expected_objects", mode="before")
    @classmethod
    def _objects(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    # -- section views (see SECTIONS); ``encoding``/``detection``/``scaling`` because ``encoder``,
    # ``detector`` and ``ray`` are keys of their sections
    @property
    def sampling(self) -> SamplingSettings:
        return _view(self, SamplingSettings)

    @property
    def encoding(self) -> EncoderSettings:
        return _view(self, EncoderSettings)

    @property
    def detection(self) -> DetectorSettings:
        return _view(self, DetectorSettings)

    @property
    def events(self) -> EventSettings:
        return _view(self, EventSettings)

    @property
    def alerts(self) -> AlertSettings:
        return _view(self, AlertSettings)

    @property
    def api(self) -> ApiSettings:
        return _view(self, ApiSettings)

    @property
    def scaling(self) -> RaySettings:
        return _view(self, RaySettings)

    @property
    def service(self) -> ServiceSettings:
        return _view(self, ServiceSettings)

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


def _without_removed(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` without the keys of removed detectors (top level or in the detector section)."""
    gone = [k for k in REMOVED_KEYS if k in data]
    section = data.get("detector")
    if isinstance(section, dict) and any(k in section for k in REMOVED_KEYS):
        gone += [k for k in REMOVED_KEYS if k in section]
        data = {**data, "detector": {k: v for k, v in section.items() if k not in REMOVED_KEYS}}
    if gone:
        log.warning("%s: ignoring %s (settings of removed detectors)", where, ", ".join(sorted(set(gone))))
    return {k: v for k, v in data.items() if k not in REMOVED_KEYS}


def flatten_sections(data: dict[str, Any], where: str = "settings") -> dict[str, Any]:
    """Nested sections (``sampling: {interval_ms: 250}``) to flat keys; flat keys pass through.

    ``encoder``, ``detector`` and ``ray`` are both a key and a section: a mapping there is the
    section. A key unknown to its section, or a key set both flat and in its section, is an error.
    """
    out: dict[str, Any] = {}
    nested: dict[str, str] = {}
    data = _without_removed(data, where)
    for key, value in data.items():
        if key in SECTIONS and (isinstance(value, dict) or key not in Settings.model_fields):
            value = {} if value is None else value  # a section whose keys are all commented out
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: section {key} must be a mapping of its keys")
            allowed = section_keys(key)
            for sub, v in value.items():
                if sub not in allowed:
                    raise ConfigError(f"{where}: unknown key {sub!r} in section {key} "
                                      f"(its keys: {', '.join(allowed)})")
                nested[sub] = key
                out[sub] = v
    for key, value in data.items():
        if key in nested and not (key in SECTIONS and isinstance(value, dict)):
            raise ConfigError(f"{where}: {key} is set both at the top level and in section {nested[key]}")
        if not (key in SECTIONS and (isinstance(value, dict) or key not in Settings.model_fields)):
            out[key] = value
    return out


def load_settings(
    config_file: str | Path | None = None,
    *,
    saved: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Merge defaults, a YAML file, the environment, ``saved`` and explicit overrides (``None`` values ignored).

    ``saved`` holds parameters a user chose and saved in the application (the training set's
    parameters, chosen on the dashboard's Train page): above the file and environment, below what
    this call's caller sets. The file, ``saved`` and ``overrides`` may use flat keys or nest them in
    their sections (:data:`SECTIONS`).
    """
    values: dict[str, Any] = {}
    path = Path(config_file) if config_file else find_config_file()
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.MarkedYAMLError as exc:  # its text quotes the file's line: it may hold a password
            mark = exc.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"cannot read config file {path}: {exc.problem or 'not YAML'}{where}") from None
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        values.update(flatten_sections(data, f"config file {path}"))
    values.update(_env_values())
    values.update({k: v for k, v in flatten_sections(saved or {}, "saved parameters").items() if v is not None})
    values.update({k: v for k, v in flatten_sections(overrides or {}, "overrides").items() if v is not None})
    return _validated(values)


def updated(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with ``overrides`` on top (flat or in sections, ``None`` ignored), validated as
    :func:`load_settings` validates: for one request's options (the REST API's jobs)."""
    extra = {k: v for k, v in flatten_sections(overrides, "overrides").items() if v is not None}
    return _validated({**settings.model_dump(), **extra})


def _validated(values: dict[str, Any]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {loc}: {first['msg']}") from None
