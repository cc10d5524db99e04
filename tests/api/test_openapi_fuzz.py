"""Schemathesis over the served OpenAPI spec (bounded): no generated request causes a 5xx, and no
job or watcher a generated request starts crashes (they may fail, with a clear error). Watchers are
judged by their own status after the run, not by the log (a watcher's crash is logged without
exception info)."""

import logging
import re
import time

import httpx
import hypothesis
import pytest
from hypothesis import given
from schemathesis.checks import not_a_server_error

from vlm_anomaly.synthetic import write_video

TOKEN = "test-token-0123456789"  # as in conftest.server
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = re.compile(
    r"^(GET /(models|events|jobs|sources|gaps|health)(/\{[a-z_]+\})?"
    r"|POST /events/\{event_id\}/ack)$"
)
#: requests that write: uploads (train, score), starting a watcher, deleting; run in this order so
#: the deletes meet what the others created
WRITES = [
    "POST /models/{name}/train",
    "POST /models/{name}/score",
    "POST /sources",
    "DELETE /sources/{watch_id}",
    "DELETE /events/{event_id}",
    "DELETE /models/{name}",
]
MODEL = "fuzzed"  # a real model the second pass of the uploads and POST /sources aims at


def _fuzz(op, *, examples: int, pin=None) -> None:
    @given(case=op.as_strategy())
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def check(case):
        if pin is not None:
            pin(case)
        case.call_and_validate(headers=AUTH, checks=[not_a_server_error], timeout=30)

    check()


def _operations(api_schema, wanted) -> dict:
    ops = {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in api_schema.get_all_operations())}
    return {k: op for k, op in ops.items() if wanted(k)}


def test_fast_endpoints_never_fail_with_5xx(api_schema):
    ops = _operations(api_schema, FAST.match)
    assert len(ops) >= 9, list(ops)
    for op in ops.values():
        _fuzz(op, examples=10)


def _pin_path(**values):
    def pin(case) -> None:
        case.path_parameters = {**(case.path_parameters or {}), **values}

    return pin


def _pin_watch_body(source: str):
    """Aim POST /sources at the real model and, every other case, at a real clip (so watchers run)."""
    def pin(case) -> None:
        if isinstance(case.body, dict):
            pin.n += 1
            case.body = {**case.body, "model": MODEL, "realtime": False,
                         **({"source": source} if pin.n % 2 else {})}

    pin.n = 0
    return pin


def _pin_watcher(client):
    """Aim at the watchers that exist, in turn (some fuzzed requests started them)."""
    def pin(case) -> None:
        ids = [w["id"] for w in client.get("/sources").json()] or ["w0"]
        pin.n += 1
        case.path_parameters = {"watch_id": ids[pin.n % len(ids)]}

    pin.n = 0
    return pin


def test_uploads_sources_and_deletes_never_fail_with_5xx(api_schema, server, tmp_path, caplog):
    ops = _operations(api_schema, WRITES.__contains__)
    assert sorted(ops) == sorted(WRITES), list(ops)  # the spec has every write operation
    with httpx.Client(base_url=server, headers=AUTH, timeout=120) as client:
        clip = write_video(tmp_path / "normal.mp4", seconds=2, fps=5, size=(96, 72), seed=0)
        job = client.post(f"/models/{MODEL}/train", files={"files": ("normal.mp4", clip.read_bytes(), "video/mp4")},
                          data={"interval_ms": "500"}).json()
        _wait_jobs(client)
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "done"

        # each operation as generated (mostly unknown models, ids and names), then aimed at what exists
        aimed = {
            "POST /models/{name}/train": _pin_path(name="fuzz-train"),
            "POST /models/{name}/score": _pin_path(name=MODEL),
            "POST /sources": _pin_watch_body(str(clip)),
            "DELETE /sources/{watch_id}": _pin_watcher(client),
            "DELETE /models/{name}": _pin_path(name=MODEL),
        }
        with caplog.at_level(logging.ERROR, logger="vlm_anomaly"):
            for key in WRITES:
                _fuzz(ops[key], examples=8)
                if key in aimed:
                    _fuzz(ops[key], examples=8, pin=aimed[key])
            _wait_jobs(client)
            _wait_watchers(client)
            watchers = client.get("/sources").json()
            for w in watchers:
                assert client.delete(f"/sources/{w['id']}").status_code == 200
        # every watcher a fuzzed request started (stopped ones stay listed) ended, was stopped, or
        # failed with a clear input error; a crash is what the watcher reports as "TypeName: message"
        assert any(w["frames"] > 0 for w in watchers), watchers  # watchers really ran on the clip
        bad = [w for w in watchers if w["status"] not in ("ended", "stopped", "failed") or crashed(w)]
        assert bad == [], bad
        crashes = [r.getMessage() for r in caplog.records if r.exc_info]
        assert crashes == [], crashes
        assert client.get("/health").json()["status"] == "ok"


def crashed(watcher: dict) -> bool:
    """A watcher that failed on an unexpected exception (reported as ``TypeName: message``), not on an
    input error (whose message is the error's own text)."""
    return watcher["status"] == "failed" and bool(re.match(r"[A-Z]\w*: ", watcher["error"] or ""))


def test_crashed_tells_a_crash_from_an_input_error():
    assert crashed({"status": "failed", "error": "RuntimeError: boom"})
    assert crashed({"status": "failed", "error": "KeyError: 'x'"})
    assert not crashed({"status": "failed", "error": "/tmp/x.mp4: no such file or folder"})
    assert not crashed({"status": "ended", "error": None})


def _wait_watchers(client, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while any(w["status"] == "running" for w in client.get("/sources").json()):
        if time.monotonic() > deadline:
            pytest.fail("watchers started by the fuzzer did not end")
        time.sleep(0.2)


def _wait_jobs(client, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while any(j["status"] in ("queued", "running") for j in client.get("/jobs").json()):
        if time.monotonic() > deadline:
            pytest.fail("jobs started by the fuzzer did not finish")
        time.sleep(0.2)
