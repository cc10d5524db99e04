"""REST API (FastAPI): a thin shell over the pipeline, the model store, events and the monitor.

``create_app`` (app.py) builds the services and includes one router per domain (routes/); schemas.py
holds the request and response models the OpenAPI document shows."""

from .app import create_app

__all__ = ["create_app"]
