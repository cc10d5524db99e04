"""The served OpenAPI document describes every answer: a client generated from it knows each field of
each JSON response, the media type of the others, and the shape of a refusal."""

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from vlm_anomaly import load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.events import EventStore
from vlm_anomaly.video.live import Gap

TOKEN = "schema-token-0123456789"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings(overrides={"home": tmp_path_factory.mktemp("home"), "encoder": "efficientnet",
                                    "api_tokens": [TOKEN]})


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def _resolve(doc: dict, schema: dict) -> dict:
    """A response schema with its ``$ref`` followed, and an array's items in its place."""
    if schema.get("type") == "array":
        schema = schema["items"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operations(doc: dict):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


def test_every_json_answer_documents_its_fields(client):
    doc = client.get("/openapi.json").json()
    ops = dict(_operations(doc))
    assert len(ops) >= 20, list(ops)
    undocumented, media = [], {}
    for name, op in ops.items():
        [ok] = [op["responses"][c] for c in ("200", "201", "202") if c in op["responses"]]
        content = ok.get("content") or {}
        if "application/json" in content:
            schema = _resolve(doc, content["application/json"].get("schema", {}))
            if not schema.get("properties"):
                undocumented.append(name)
        elif content:  # a file or text: its media type
            media[name] = next(iter(content))
        else:
            undocumented.append(name)
    assert undocumented == []
    assert media == {"GET /metrics": "text/plain", "GET /events/{event_id}/snapshot": "image/jpeg",
                     "GET /events/{event_id}/clip": "video/mp4"}
    job = _resolve(doc, ops["POST /models/{name}/train"]["responses"]["202"]["content"]["application/json"]["schema"])
    assert {"id", "status", "progress", "result"} <= set(job["properties"])


def test_every_route_but_health_needs_the_token_and_documents_its_refusals(client):
    doc = client.get("/openapi.json").json()
    for name, op in _operations(doc):
        if name == "GET /health":
            assert "security" not in op
            continue
        assert op.get("security") == [{"HTTPBearer": []}], name
        refusal = _resolve(doc, op["responses"]["4XX"]["content"]["application/json"]["schema"])
        assert "error" in refusal["properties"], name
    assert client.get("/models", headers={"Authorization": "Bearer nope"}).json() == {"error": "invalid token"}


def test_answers_carry_the_documented_fields(client):
    """What the routes send has the fields the document lists (nothing dropped by a response model)."""
    doc = client.get("/openapi.json").json()
    fields = lambda name: set(doc["components"]["schemas"][name]["properties"])  # noqa: E731
    assert set(client.get("/health").json()) == fields("Health")
    assert client.get("/jobs").json() == []
    r = client.get("/events/1")
    assert r.status_code == 404 and set(r.json()) <= fields("ErrorOut")
    r = client.get("/events", params={"limit": 0})
    assert r.status_code == 422 and set(r.json()) == fields("ErrorOut")


def test_gaps_are_masked_and_stamped_in_utc(client, settings):
    """A stream gap reads back with its source and reason masked and its time zone-aware (UTC), like
    the events' ``*_at`` times (SQLite keeps no zone)."""
    store = EventStore.from_settings(settings)  # the events database the app reads
    url = "rtsp://admin:hunter2@cam1.lan/live"
    store.add_gap(Gap("rtsp://***@cam1.lan/live", 1.0, 3.5, f"read timeout on {url}", 2))  # as watchers store it
    for source in (None, "rtsp://***@cam1.lan/live", "cam1.lan_live"):
        [g] = client.get("/gaps", params={} if source is None else {"source": source}).json()
        assert "hunter2" not in str(g) and g["source"] == "rtsp://***@cam1.lan/live"
        assert g["missed_s"] == 2.5 and g["reconnects"] == 2
        assert dt.datetime.fromisoformat(g["recorded_at"]).utcoffset() == dt.timedelta(0)
    assert client.get("/gaps", params={"source": "cam2"}).json() == []
    store.close()
