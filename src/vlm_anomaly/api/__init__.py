"""REST API (FastAPI): a thin shell over the pipeline, the model store, events and the monitor."""

from .app import create_app

__all__ = ["create_app"]
