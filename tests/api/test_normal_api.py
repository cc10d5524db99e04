"""``/models/{name}/normal`` and ``/events/{id}/normal`` on a real server: an event watched through
the API is marked normal, the same video watched again raises none; a range of a file; list; undo;
auth and the media allow-list as everywhere."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.conftest import TOKEN
from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.synthetic import write_video


@pytest.fixture(scope="module")
def setup(api_home, tmp_path_factory):
    d = tmp_path_factory.mktemp("normal-api")
    train = [write_video(d / "n1.mp4", seconds=12, seed=0), write_video(d / "n2.avi", seconds=12, seed=0)]
    Pipeline(load_settings(overrides={"home": api_home, "interval_ms": 250})).train("street", train)
    for p in train:
        p.unlink()  # marking never reads the training videos
    return write_video(d / "intruder.mp4", seconds=12, seed=0, start_s=30, anomaly_span=(4.0, 8.0))


def _watch(client, source) -> list[dict]:
    before = {e["id"] for e in client.get("/events").json()}
    r = client.post("/sources", json={"model": "street", "source": str(source), "realtime": False})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/sources/{wid}").json()["status"] in ("running", "starting") and time.monotonic() < deadline:
        time.sleep(0.2)
    client.delete(f"/sources/{wid}")
    return [e for e in client.get("/events").json() if e["id"] not in before]


def test_mark_an_event_normal_then_watch_again_list_and_undo(client, setup):
    intruder = setup
    [ev] = _watch(client, intruder)
    r = client.post(f"/events/{ev['id']}/normal", json={"note": "the neighbour's van"})
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["model"] == "street" and a["source"] == "intruder.mp4" and a["note"] == "the neighbour's van"
    assert a["frames"] > 0 and a["start_s"] < ev["start_time"] and a["end_s"] > ev["end_time"]
    assert _watch(client, intruder) == []
    assert client.get("/models/street/normal").json() == [a]
    # the same event again: refused (its footage twice would tighten the threshold like a twin clip)
    again = client.post(f"/events/{ev['id']}/normal")
    assert again.status_code == 409 and f"was learnt as normal already (addition {a['id']}" in again.json()["error"]
    assert client.get("/models/street/normal").json() == [a]

    r = client.delete(f"/models/street/normal/{a['id']}")
    assert r.status_code == 200 and r.json() == {"model": "street", "undone": a["id"]}
    assert client.get("/models/street/normal").json() == []
    assert client.delete(f"/models/street/normal/{a['id']}").status_code == 404
    assert len(_watch(client, intruder)) == 1


def test_mark_a_range_of_a_file_and_refusals(client, server, setup, api_home):
    intruder = setup
    r = client.post("/models/street/normal", json={"source": str(intruder), "start_s": 3, "end_s": 9})
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["start_s"], a["end_s"], a["note"]) == (3.0, 9.0, "") and 23 <= a["frames"] <= 25
    assert client.delete(f"/models/street/normal/{a['id']}").status_code == 200

    # the same rules as every route: a token, an allowed path, a known model, a sane range
    assert httpx.get(server + "/models/street/normal").status_code == 401
    r = client.post("/models/street/normal", json={"source": "/etc/hostname"})
    assert r.status_code == 403 and "error" in r.json()
    assert client.post("/models/nope/normal", json={"source": str(intruder)}).status_code == 404
    assert client.delete("/models/nope/normal/abc").status_code == 404
    assert not list((api_home / "models").glob("*nope*")), "a refused request must leave no file behind"
    r = client.post("/models/street/normal", json={"source": str(intruder), "start_s": 5, "end_s": 2})
    assert r.status_code == 422 and "before it starts" in r.json()["error"]
    assert client.post("/events/999999/normal").status_code == 404
    assert client.get("/models/street/normal").json() == []


def test_the_routes_are_in_the_openapi_document(server):
    doc = httpx.get(server + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert {"/models/{name}/normal", "/models/{name}/normal/{addition_id}", "/events/{event_id}/normal"} <= set(
        doc["paths"])
    assert "NormalAdditionOut" in doc["components"]["schemas"]
