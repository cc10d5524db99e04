"""Settings: built-in defaults < config file < environment (``VLM_ANOMALY_*``) < explicit overrides (CLI flags).

Why one object: the CLI, the dashboard and the REST API must agree on every default, so they all
call :func:`load_settings` and only override what their user set.

Why sections: a component should see the few settings it uses, not all of them. Each setting is
defined once, in its section's model below (type, default, validation, one line of doc); a
component takes its section (``settings.sampling``, ``settings.alerts``, ...). Users keep writing
flat keys (YAML, ``VLM_ANOMALY_<KEY>``, CLI flags, ``updated(settings, {"interval_ms": 250})``) or
nest them under their YAML section (:data:`SECTIONS`); ``settings.interval_ms`` reads and writes
the key in its section (:data:`FLAT_KEYS`, derived from the section models).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .credentials import PasswordHash
from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "VLM_ANOMALY_"
#: URL schemes a watched source may have (network streams; never local-file protocols)
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
DEFAULT_CONFIG_FILES = ("vlm-anomaly.yaml", "config.yaml")

#: the last commit holding the detectors, feature mode and keys removed because they lost on the
#: project's own UCSD Ped2 table (docs/results.md keeps their rows and reports)
REMOVED_IN = "793ab22"
#: detectors no longer offered (a config or model naming one gets a clear error, not a stack trace)
REMOVED_DETECTORS = ("attributes", "ensemble", "gaussian", "iforest", "knn", "padim", "patchcore")
#: what to use instead, in words (the registry lists the exact names, plugins included)
ALTERNATIVES = "motion (the default), ocsvm, or patch-knn with features: tiles"
#: keys of removed detectors: still accepted in files and saved parameters (ignored, with a warning)
REMOVED_KEYS = ("knn_k", "ensemble", "attr_k", "attr_crop_size", "attr_flow_method", "attr_fused")


def default_home() -> Path:
    """Where models, caches and results live unless configured otherwise."""
    return Path(os.environ.get("VLM_ANOMALY_HOME", Path.home() / ".vlm-anomaly"))


def removed_detector_message(name: str, alternatives: str) -> str:
    """Why ``name`` is refused and what to use instead."""
    return (f"detector {name!r} was removed (it lost to others on UCSD Ped2, see docs/results.md; "
            f"last in commit {REMOVED_IN}); choose from {alternatives}")


# -- value types shared by several settings (a ValueError's message is what the loader shows) --

def _csv(v: Any) -> Any:
    """A list may be written as one comma-separated string (environment variables), or as the
    YAML/JSON list a config file would hold (``["http://a", "http://b"]``)."""
    if isinstance(v, str) and v.strip().startswith("["):
        try:
            return yaml.safe_load(v)
        except yaml.YAMLError:
            pass  # not a list after all: the items as written
    return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


def _webhooks(v: list[str]) -> list[str]:
    """Each webhook an http(s) URL with a host: checked when the settings load, not at the first
    alert (which failed four times, with back-off, on a URL that could never work)."""
    from urllib.parse import urlsplit

    from .redact import redact_url

    for url in v:
        try:
            parts = urlsplit(str(url).strip())
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"webhook {redact_url(str(url))!r} is not an http:// or https:// URL with a host")
    return v


def _interval(v: int | None) -> int | None:
    if v is not None and v != 0 and not 100 <= v <= 2000:
        raise ValueError("interval_ms must be 0 (every frame) or between 100 and 2000")
    return v


def _detector(v: str) -> str:
    if v in REMOVED_DETECTORS:
        raise ValueError(removed_detector_message(v, ALTERNATIVES))
    return v


def gamma_value(v: Any) -> str | float:
    """The ocsvm rbf width: "scale", "auto" or a finite number > 0 (a number written as text becomes one).

    Why here: a gamma of 'nan', '-1' or a word was saved from the dashboard and failed only in the middle of
    training (scikit-learn's error); every layer checks it when the settings load."""
    if v in ("scale", "auto"):
        return v
    try:
        g = float(v)
    except (TypeError, ValueError):
        g = math.nan
    if isinstance(v, bool) or not math.isfinite(g) or g <= 0:
        raise ValueError(f"gamma must be 'scale', 'auto' or a number > 0, not {v!r}")
    return g


def _features(v: Any) -> Any:
    if v == "patches":
        raise ValueError("features 'patches' was removed (it lost to tiles on UCSD Ped2, see "
                         f"docs/results.md; last in commit {REMOVED_IN}); choose from frame, tiles")
    return v


def _stream_schemes(v: list[str]) -> list[str]:
    # local-file protocols (file:, pipe:, concat:, ...) would bypass allowed_media_dirs
    v = [s.lower().removesuffix("://") for s in v]
    if bad := [s for s in v if s not in STREAM_SCHEMES]:
        raise ValueError(f"not a stream URL scheme: {', '.join(bad)} (allowed: {', '.join(STREAM_SCHEMES)})")
    return v


def _password_hash(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    try:
        PasswordHash.parse(v)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return v.strip()


UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
Interval = Annotated[int, AfterValidator(_interval)]
Csv = BeforeValidator(_csv)


class CameraSpec(BaseModel):
    """One camera of the service file: a name (Home Assistant device, MQTT topics), a source, a model,
    and optionally its low-resolution sub-stream, which is then what is read and scored."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    source: str | None = None  # None: a Frigate camera of that name (frigate_url) with its own model
    model: str | None = None  # None: watch_model
    # the camera's sub-stream (e.g. 640x360): read and scored instead of ``source``, evidence included
    detect_source: str | None = None

    @model_validator(mode="after")
    def _detect_needs_source(self) -> CameraSpec:
        if self.detect_source is not None and self.source is None:
            raise ValueError("detect_source is a sub-stream of the camera's source: give source too "
                             "(a Frigate camera's detect stream comes from Frigate)")
        return self


# -- the sections: each setting is defined here, once ----------------------------------------------

class Section(BaseModel):
    """A group of settings; assignments are validated like loaded values."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingSettings(Section):
    """Which frames are read and how: interval, size and length limits, stream reconnects."""

    interval_ms: Interval = Field(500, description="sampling interval: 0 = every frame, else 100..2000 ms")
    train_interval_ms: Interval | None = Field(None, description="sampling of training clips; None = interval_ms")
    max_frames: int = Field(0, ge=0, description="sampled frames per job at most (0 = no limit)")
    max_side: int = Field(1920, ge=0, description="frames whose longer side is larger are downscaled at decode")
    folder_fps: float = Field(0, ge=0, le=1000, description="frames per second of frame folders (they carry no "
                              "timing): 0 = the model's training videos' rate, else 25")
    max_duration_s: float = Field(0, ge=0, description="longer videos are refused before decoding or truncated "
                                  "with a warning when their length only shows while decoding (0 = no limit)")
    stream_stall_timeout_s: float = Field(5.0, description="no frame for this long = stalled: reconnect")
    stream_backoff_initial_s: float = Field(0.5, description="first wait before a stream reconnects")
    stream_backoff_max_s: float = Field(30.0, description="longest wait between reconnects (doubling backoff)")


class EncoderSettings(Section):
    """The image/text encoder, where it runs, and the zero-shot descriptions it makes."""

    encoder: Literal["auto", "openclip", "efficientnet"] = Field("auto", description="the image/text encoder")
    clip_model: str = Field("ViT-B-32", description="OpenCLIP architecture")
    clip_pretrained: str = Field("openai", description="OpenCLIP weights tag (none: random, for tests)")
    clip_weights: UserPath | None = Field(None, description="local weights file (offline machines)")
    device: str = Field("auto", description="auto | cpu | cuda")
    batch_size: int = Field(16, ge=1, description="frames encoded at once")
    threads: int = Field(0, description="torch intra-op threads; 0 = choose for this machine")
    runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch", description="where the image tower runs; ONNX exports are cached under cache_path/onnx/")
    embedding_cache: bool = Field(True, description="keep per-video embeddings under the cache")
    expected_objects: Annotated[list[str], Csv] = Field(default_factory=list, description="objects descriptions "
                                                        "look for (zero-shot)")
    top_k: int = Field(3, ge=1, description="labels per frame description")


class DetectorSettings(Section):
    """The detector, its parameters and the features it is fitted on."""

    detector: Annotated[str, AfterValidator(_detector)] = Field(
        "motion", description="motion (default): per-location motion and moving-shape densities, calibrated; "
        "ocsvm: the original One-Class SVM on frame embeddings; see docs/motion.md")
    nu: float = Field(0.1, gt=0.0, le=1.0, description="ocsvm, patch-knn: share of normal training frames below "
                      "the threshold")
    gamma: Annotated[str | float, AfterValidator(gamma_value)] = Field("scale", description="ocsvm kernel width")
    smoothing_window: int = Field(5, ge=1, description="centred moving average of frame scores, in samples")
    threshold: float = Field(0.0, description="decision threshold of frame-embedding detectors")
    target_false_alarm: float = Field(0.01, gt=0.0, lt=0.5, description="motion: share of held-out normal "
                                      "frames its calibrated threshold may flag")
    motion_appearance: bool = Field(True, description="motion: also model what moving regions look like "
                                    "(crops through the encoder)")
    motion_crop_encoder: Literal["efficientnet", "configured"] = Field(
        "efficientnet", description="motion: which encoder embeds the crops; efficientnet: the offline "
        "backbone at 64 px (about 2 ms a crop on 2 cores); configured: the configured encoder (OpenCLIP at "
        "224 px costs 50-140 ms a crop there, but its embeddings align with text prompts)")
    features: Annotated[Literal["frame", "tiles"], BeforeValidator(_features)] = Field(
        "frame", description="frame: one embedding per frame; tiles: the whole frame + tile_rows x tile_cols "
        "overlapping tiles, each embedded (small objects), for patch-knn")
    tile_rows: int = Field(2, ge=1, le=8, description="tiles: rows of tiles")
    tile_cols: int = Field(3, ge=1, le=8, description="tiles: columns of tiles")
    tile_overlap: float = Field(0.25, ge=0.0, lt=0.9, description="tiles: share of a tile its neighbours overlap")


class EventSettings(Section):
    """How scores become events, where events are kept, and for how long."""

    events_db_url: str | None = Field(None, description="any SQLAlchemy URL; default sqlite:///<home>/events.db")
    events_dir: Path | None = Field(None, description="snapshots and clips; default <home>/events")
    event_enter_threshold: float | None = Field(None, description="a smoothed score below this opens an event; "
                                                "None = event_hysteresis below the model's threshold")
    event_exit_threshold: float | None = Field(None, description="a smoothed score above this closes it; None = "
                                               "half-way back (hovering frames never flicker events)")
    event_hysteresis: float = Field(0.1, description="default distance of the enter threshold below the model's")
    event_min_duration_s: float = Field(1.0, description="shorter dips are not events")
    event_cooldown_s: float = Field(2.0, description="a new dip this soon after an end continues the same event")
    event_smoothing_window: int = Field(0, description="causal window in samples; 0 = the model's smoothing window")
    event_end_smoothing_s: float = Field(1.0, ge=0, description="events end on a shorter causal window of about "
                                         "this many seconds, so they end soon after the scene returns to normal")
    clip_seconds: float = Field(4.0, description="an event's MP4 clip starts clip_seconds/2 before it, runs to its end")
    retention_days: float = Field(30.0, description="events older than this are deleted (0 = keep)")
    retention_max_mb: float = Field(1024.0, description="snapshots + clips above this: oldest events deleted "
                                    "(0 = no limit)")
    retention_interval_s: float = Field(300.0, gt=0, description="how often the retention job runs")


class AlertSettings(Section):
    """Where events are announced (webhooks, MQTT, Home Assistant) and the known-bad prompts."""

    webhook_urls: Annotated[list[str], Csv, AfterValidator(_webhooks)] = Field(
        default_factory=list, description="URLs each event is POSTed to")
    webhook_retries: int = Field(3, description="attempts after a failed delivery")
    webhook_timeout_s: float = Field(5.0, description="per delivery (webhooks, MQTT, Frigate)")
    mqtt_url: str | None = Field(None, description="mqtt://[user:password@]host[:port]")
    mqtt_topic_prefix: str = Field("vlm-anomaly", description="MQTT topics start with this")
    ha_discovery: bool = Field(True, description="with mqtt_url: announce each watched camera to Home Assistant")
    ha_discovery_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix")
    alert_prompts: Annotated[list[str], Csv] = Field(default_factory=list, description="known-bad situations, "
                                                     "CLIP encoders only")
    alert_prompt_threshold: float = Field(0.5, description="probability of a bad prompt that fires")
    alert_prompt_weight: float = Field(1.0, description="fused score = one-class score - weight * bad-prompt "
                                       "probability")


class ApiSettings(Section):
    """The REST API: where it listens, who may call it, what it may open and how much."""

    api_host: str = Field("127.0.0.1", description="where `service` serves the REST API")
    api_port: int = Field(8000, ge=1, le=65535, description="its port")
    api_tokens: Annotated[list[str], Csv] = Field(default_factory=list, description="Bearer tokens of the REST API")
    allowed_media_dirs: Annotated[list[UserPath], Csv] = Field(
        default_factory=list, description="POST /sources may open their files and sub-folders (none by default; "
        "the CLI's `watch` runs as its user and opens what it is given)")
    allowed_url_schemes: Annotated[list[str], Csv, AfterValidator(_stream_schemes)] = Field(
        default_factory=list, description="stream URL schemes POST /sources may open, e.g. [rtsp, https]")
    allowed_url_hosts: Annotated[list[str], Csv] = Field(default_factory=list, description="their hosts: cam*.lan, "
                                                         "192.168.1.0/24, *")
    allowed_cameras: Annotated[list[int], Csv] = Field(default_factory=list, description="webcam indexes")
    max_watchers: int = Field(8, ge=1, le=1000, description="sources watched at once (API and watch)")
    max_upload_mb: int = Field(500, ge=1, le=100000, description="per uploaded video (UI/API); 413 above")


class RaySettings(Section):
    """Whether batches and sources run on Ray, and which cluster."""

    ray: bool = Field(False, description="score batches / watch sources on Ray")
    ray_address: str | None = Field(None, description="None = start a local Ray; auto or ray://host:port = a cluster")


class ServiceSettings(Section):
    """What `service`/`watch` watch by name (cameras, Frigate) and where the dashboard listens."""

    cameras: list[CameraSpec] = Field(default_factory=list, description="what `watch`/`service` watch by name")
    watch_model: str | None = Field(None, description="model of cameras that name none (service, watch without "
                                    "--model)")
    watch_processes: int = Field(0, ge=0, le=64, description="worker processes the cameras are spread over (0 = "
                                 "one per core, 1 = all in one); one Python process cannot keep two cores busy")
    frigate_url: str | None = Field(None, description="http://frigate:5000: watch Frigate's cameras through its "
                                    "restreams")
    frigate_role: str = Field("detect", description="which input of each Frigate camera (its role) is watched")
    frigate_rtsp_url: str = Field("rtsp://{host}:8554/{stream}", description="Frigate's restream URL ({host}, "
                                  "{stream}, {camera})")
    frigate_events: bool = Field(True, description="each anomaly of a Frigate camera also becomes a Frigate event")
    ui_port: int = Field(8501, ge=1, le=65535, description="the dashboard's port")
    ui_address: str = Field("localhost", description="where `service` serves the dashboard (0.0.0.0 in a "
                            "container)")
    dashboard_password_hash: Annotated[str | None, AfterValidator(_password_hash)] = Field(
        None, description="the dashboard's login: a scrypt hash from `vlm-anomaly ui --hash-password` (api_tokens "
        "open it too); off loopback the dashboard refuses to start without one")
    dashboard_insecure_no_auth: bool = Field(False, description="serve a non-loopback address with no login "
                                             "(trusted LAN)")


#: YAML section name -> the attribute of :class:`Settings` holding it (``encoder``, ``detector`` and
#: ``ray`` are also keys of their sections, so their attributes are named differently)
SECTION_ATTRS = {"sampling": "sampling", "encoder": "encoding", "detector": "detection", "events": "events",
                 "alerts": "alerts", "api": "api", "ray": "scaling", "service": "service"}


def _nested(data: Any) -> Any:
    """Flat section keys of a constructor's input moved into their sections."""
    if not isinstance(data, dict) or not any(k in FLAT_KEYS for k in data):
        return data
    out = {k: v for k, v in data.items() if k not in FLAT_KEYS}
    for key, value in data.items():
        if key in FLAT_KEYS:
            section = out.get(attr := FLAT_KEYS[key], {})
            section = section.model_dump(exclude_unset=True) if isinstance(section, BaseModel) else dict(section)
            out[attr] = {**section, key: value}
    return out


class Settings(BaseModel):
    """Every tunable of the system, validated: the general keys, then one model per section.

    Example:
        >>> s = load_settings(overrides={"interval_ms": 250})
        >>> s.interval_ms, s.sampling.interval_ms, s.batch_size
        (250, 250, 16)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: UserPath = Field(default_factory=default_home, description="models, caches and events live here")
    models_dir: UserPath | None = Field(None, description="trained models; default <home>/models")
    cache_dir: UserPath | None = Field(None, description="embeddings, ONNX exports, features; default <home>/cache")
    log_level: str = Field("WARNING", description="logging level of the CLI and services")
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    encoding: EncoderSettings = Field(default_factory=EncoderSettings)
    detection: DetectorSettings = Field(default_factory=DetectorSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    scaling: RaySettings = Field(default_factory=RaySettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: Any) -> Any:
        return _nested(data)

    # flat keys: an alias of the key in its section (reads, validated writes, copies, "was it set")
    def __getattr__(self, name: str) -> Any:
        if name in FLAT_KEYS:
            return getattr(getattr(self, FLAT_KEYS[name]), name)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FLAT_KEYS:
            setattr(getattr(self, FLAT_KEYS[name]), name, value)
            # the section now holds a value set on purpose: a dump without unset fields (what watch
            # workers get) must keep it
            self.__pydantic_fields_set__.add(FLAT_KEYS[name])
        else:
            super().__setattr__(name, value)

    def __copy__(self) -> Settings:
        """A copy with sections of its own (``copy.copy`` and ``model_copy`` alike)."""
        copy = super().__copy__()
        for attr in SECTION_ATTRS.values():
            copy.__dict__[attr] = copy.__dict__[attr].model_copy()
        return copy

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy; ``update`` may name flat keys (validated, like assignments)."""
        copy = super().model_copy(deep=deep)
        for key, value in (update or {}).items():
            setattr(copy, key, value)
        return copy

    @property
    def model_fields_set(self) -> set[str]:
        """The fields set explicitly, flat keys of the sections included."""
        return super().model_fields_set | {k for a in SECTION_ATTRS.values() for k in getattr(self, a).model_fields_set}

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat key (what a YAML file, the environment and overrides name)."""
        return {k: getattr(self, k) for k in KEYS}

    @property
    def events_path(self) -> Path:
        return Path(self.events_dir).expanduser() if self.events_dir else Path(self.home) / "events"

    @property
    def events_url(self) -> str:
        return self.events_db_url or f"sqlite:///{Path(self.home).expanduser() / 'events.db'}"

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else Path(self.home) / "models"

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.home) / "cache"


#: YAML section name -> its model; a section's keys are its model's fields
SECTIONS: dict[str, type[Section]] = {name: Settings.model_fields[a].annotation for name, a in SECTION_ATTRS.items()}
#: keys that belong to no section (paths and logging): top level only
GENERAL_KEYS = tuple(k for k in Settings.model_fields if k not in SECTION_ATTRS.values())
#: flat key -> the attribute of Settings holding its section
FLAT_KEYS: dict[str, str] = {k: SECTION_ATTRS[name] for name, cls in SECTIONS.items() for k in cls.model_fields}
#: every setting's flat key, each once
KEYS = GENERAL_KEYS + tuple(FLAT_KEYS)
if len(set(KEYS)) != len(KEYS) or any(hasattr(Settings, k) for k in FLAT_KEYS):
    raise TypeError("a setting is defined twice, or shadows an attribute of Settings")


def section_keys(section: str) -> tuple[str, ...]:
    """The flat keys of one section, in their documented order."""
    return tuple(SECTIONS[section].model_fields)


def _env_values() -> dict[str, Any]:
    return {k: raw for k in KEYS if (raw := os.environ.get(ENV_PREFIX + k.upper()))}


def find_config_file() -> Path | None:
    """``$VLM_ANOMALY_CONFIG`` first, then ``vlm-anomaly.yaml``/``config.yaml`` in the working dir."""
    explicit = os.environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        return Path(explicit)
    return next((p for p in map(Path, DEFAULT_CONFIG_FILES) if p.is_file()), None)


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

    def is_section(key: str, value: Any) -> bool:
        return key in SECTIONS and (isinstance(value, dict) or key not in FLAT_KEYS)

    for key, value in data.items():
        if is_section(key, value):
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
        if not is_section(key, value):
            if key in nested:
                raise ConfigError(f"{where}: {key} is set both at the top level and in section {nested[key]}")
            out[key] = value
    return out


def load_settings(config_file: str | Path | None = None, *, saved: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
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
        except UnicodeDecodeError as exc:  # its text would quote the file's bytes
            raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {exc.start})") from None
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
    return _validated({**settings.flat(), **extra})


def _validated(values: dict[str, Any]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        loc = loc[1:] if len(loc) > 1 and loc[0] in FLAT_KEYS.values() else loc  # a key by its flat name
        raise ConfigError(f"invalid setting {'.'.join(map(str, loc))}: {exc.errors()[0]['msg']}") from None
