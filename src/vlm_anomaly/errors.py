"""Errors a user can cause. Each carries a one-line message fit for the CLI, the UI and the API."""

from __future__ import annotations

from .redact import redact_text


class VlmAnomalyError(Exception):
    """Base class: an expected failure caused by input, configuration or environment.

    Its message is shown to users (CLI, dashboard, API), so credentials in any URL it quotes
    (``rtsp://user:password@cam``, a database URL) are masked when the error is made.
    """

    #: HTTP status the REST API answers with.
    status_code: int = 400

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))


class InvalidVideoError(VlmAnomalyError):
    """A video file or frame folder that cannot be decoded (corrupt, empty, wrong format)."""

    status_code = 422


class VideoTooLongError(InvalidVideoError):
    """A source over a configured resource limit (duration ``max_duration_s``, or frame size)."""

    status_code = 413


class ModelNotFoundError(VlmAnomalyError):
    """No saved model under that name.

    The message leaves out the models folder (an API caller must not learn the server's paths);
    ``folder`` keeps it for the CLI, where it tells a user which ``VLM_ANOMALY_HOME`` was searched.
    """

    status_code = 404

    def __init__(self, message: str, *, folder: object = None) -> None:
        super().__init__(message)
        self.folder = folder


class InvalidModelNameError(VlmAnomalyError):
    """A model name outside the safe character set (paths, NUL, too long, empty)."""


class CorruptModelError(VlmAnomalyError):
    """A model file that is truncated, tampered with, of an unknown format version or inconsistent."""

    status_code = 422


class EncoderMismatchError(VlmAnomalyError):
    """Embeddings from one encoder given to a model trained with another (or another dimension)."""

    status_code = 409


class NotFittedError(VlmAnomalyError):
    """A detector used before `fit`."""


class EncoderUnavailableError(VlmAnomalyError):
    """An encoder whose weights cannot be had (offline, missing file, unknown name)."""

    status_code = 503


class StorageError(VlmAnomalyError, OSError):
    """The store cannot write (disk full, read-only folder): nothing was changed.

    Also an :class:`OSError`, so callers that handled the raw I/O error keep working.
    """

    status_code = 507


class ConfigError(VlmAnomalyError):
    """A configuration value outside its allowed range or of the wrong type."""


class SourceNotAllowedError(VlmAnomalyError):
    """A source outside what the service may open (media folders, URL schemes/hosts, cameras)."""

    status_code = 403


class TooManyWatchersError(VlmAnomalyError):
    """Starting one more watcher would pass the ``max_watchers`` cap."""

    status_code = 429


class CannotLearnError(VlmAnomalyError):
    """A model whose detector cannot learn footage marked normal without being trained again."""

    status_code = 409


class AlreadyLearntError(VlmAnomalyError):
    """Footage the model has learnt as normal already (the same source and range)."""

    status_code = 409


class AdditionNotFoundError(VlmAnomalyError):
    """No footage marked normal under that id in the model."""

    status_code = 404
