"""A real uvicorn server on localhost running the API app, with a known token."""

import threading
import time

import httpx
import pytest
import uvicorn

from tests.helpers import free_port
from vlm_anomaly import load_settings
from vlm_anomaly.api import create_app

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def api_home(tmp_path_factory):
    """The server's settings home (models, uploads/, events)."""
    return tmp_path_factory.mktemp("api-home")


@pytest.fixture(scope="module")
def server(api_home, tmp_path_factory):
    """Base URL of a live server (module-scoped: one encoder, one events DB for the module)."""
    home = api_home
    settings = load_settings(
        overrides={
            "home": home,
            "encoder": "efficientnet",  # offline; the detector is the shipped default (motion)
            "interval_ms": 250,
            "api_tokens": [TOKEN, "second-token"],
            "max_upload_mb": 2,
            # the videos the tests watch live under pytest's temporary folder
            "allowed_media_dirs": [tmp_path_factory.getbasetemp()],
        }
    )
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        pytest.fail("server did not start")
    yield url
    srv.should_exit = True
    th.join(15)


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as c:
        yield c


@pytest.fixture(scope="module")
def api_schema(server):
    """The server's own OpenAPI document, loaded by schemathesis."""
    import schemathesis

    return schemathesis.openapi.from_url(server + "/openapi.json")
