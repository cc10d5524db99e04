"""REST API against a real uvicorn server: auth, upload limits, jobs, models, events, sources."""

import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from vlm_anomaly.api.limits import MAX_VIDEOS_PER_REQUEST
from vlm_anomaly.motion.scorer import FIT_INTERVAL_MS
from vlm_anomaly.pipeline import expected_samples
from vlm_anomaly.synthetic import write_video


def wait_job(client, job, timeout=180, seen: list | None = None):
    """Poll a job until it ends; ``seen`` collects each poll's (status, done, total)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = client.get(f"/jobs/{job['id']}").json()
        if seen is not None:
            seen.append((j["status"], j["progress"]["done"], j["progress"]["total"]))
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    pytest.fail(f"job {job['id']} did not finish")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("api-videos")
    return {
        "normal": write_video(d / "normal.mp4", seconds=12, seed=0),
        "normal_avi": write_video(d / "normal.avi", seconds=12, seed=0),
        "intruder": write_video(d / "intruder.mp4", seconds=12, seed=0, anomaly_span=(4.0, 8.0)),
    }


def test_health_is_open_everything_else_needs_the_token(server):
    assert httpx.get(server + "/health").json()["status"] == "ok"
    r = httpx.get(server + "/models")
    assert r.status_code == 401 and r.json()["error"] == "missing bearer token"
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(server + "/models", headers={"Authorization": "Bearer wrong-token"})
    assert r.status_code == 401 and r.json()["error"] == "invalid token"
    r = httpx.get(server + "/events", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    for token in ("test-token-0123456789", "second-token"):
        r = httpx.get(server + "/models", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == []
    assert httpx.get(server + "/metrics").status_code == 401
    assert (
        "/docs" in httpx.get(server + "/openapi.json").text
        or httpx.get(server + "/docs").status_code == 200
    )


def test_no_token_is_refused_before_the_body_is_read(server):
    """Without a valid token an upload (or a JSON body) is answered 401 at once: the server neither
    waits for nor spools the body (FastAPI reads a body before it runs the token's dependency)."""
    u = urlsplit(server)
    for path, ctype, declared, auth in [
        ("/models/m/train", "multipart/form-data; boundary=x", 60 << 20, ""),
        ("/models/m/score", "multipart/form-data; boundary=x", 2 << 20, "Authorization: Bearer wrong\r\n"),
        ("/sources", "application/json", 1 << 20, ""),
    ]:
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {ctype}\r\n"
                      f"Content-Length: {declared}\r\n\r\n".encode())
            s.sendall(b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.mp4"\r\n\r\n'
                      + b"\0" * 100_000)  # the rest of the declared body never comes
            answer = b""
            try:
                while chunk := s.recv(4096):
                    answer += chunk
            except TimeoutError:
                pytest.fail(f"{path}: no answer while the body was still expected: {answer!r}")
            except ConnectionResetError:  # it closed with the body's rest unread: what it said counts
                pass
        text = answer.decode()
        assert text.startswith("HTTP/1.1 401"), text
        assert "www-authenticate: bearer" in text.lower() and text.endswith('"}'), text


def test_upload_limit_gives_413_json(client, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (3 * 1024 * 1024))  # limit is 2 MB
    with open(big, "rb") as fh:
        r = client.post("/models/big/train", files={"files": ("big.mp4", fh, "video/mp4")})
    assert r.status_code == 413 and "upload limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit must hold for chunked bodies too
        yield (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n"
        )
        for _ in range(3):
            yield b"\0" * (1024 * 1024)

    r = client.post(
        "/models/big/score",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413 and "error" in r.json()
    assert client.get("/models").json() == []  # nothing was trained


def test_a_json_body_carries_no_video_allowance(client):
    """Routes that take JSON (sources, marking normal) refuse a body of megabytes with 413 before
    parsing it in memory; only the upload routes get room for their videos (2 MB each here)."""
    huge = b'{"model": "m", "source": "' + b"a" * ((3 << 20) // 2) + b'"}'  # 1.5 MB, under one video's 2 MB
    for path in ("/sources", "/models/m/normal", "/events/1/normal"):
        r = client.post(path, content=huge, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "upload limit" in r.json()["error"], (path, r.text[:200])
    assert client.get("/sources").json() == []


def test_upload_limit_is_per_video(client):
    """Two videos of 1.5 MB each (3 MB in all) pass a 2 MB limit: the limit is per video."""
    blob = b"\0" * (3 * 1024 * 1024 // 2)
    files = [("files", (f"v{i}.mp4", blob, "video/mp4")) for i in range(2)]
    r = client.post("/models/two/train", files=files)
    assert r.status_code == 202, r.json()
    j = wait_job(client, r.json())
    # accepted, then refused by the decoder (zeros are not a video), not by the size limit
    assert j["status"] == "failed" and "v0.mp4" in j["error"] and "limit" not in j["error"]
    one_too_big = [("files", ("ok.mp4", blob, "video/mp4")), ("files", ("big.mp4", blob * 2, "video/mp4"))]
    r = client.post("/models/two/train", files=one_too_big)
    assert r.status_code == 413
    assert "big.mp4" in r.json()["error"] and "2 MB per video" in r.json()["error"]
    too_many = [("files", (f"v{i}.mp4", b"x", "video/mp4")) for i in range(MAX_VIDEOS_PER_REQUEST + 1)]
    r = client.post("/models/two/train", files=too_many)
    assert r.status_code == 413 and f"at most {MAX_VIDEOS_PER_REQUEST}" in r.json()["error"]
    assert client.get("/models").json() == []


def test_a_refused_upload_leaves_no_job_folder(client, api_home):
    """An upload refused while it is saved (empty, over the limit) removes what it had written."""
    uploads = api_home / "uploads"
    with_folders = lambda: {p for p in uploads.glob("*/*") if p.is_dir()}  # noqa: E731 (the API's folder's jobs)
    before = with_folders()
    good = ("files", ("good.mp4", b"\1" * 1000, "video/mp4"))
    r = client.post("/models/x/train", files=[good, ("files", ("empty.mp4", b"", "video/mp4"))])
    assert r.status_code == 422 and "empty" in r.json()["error"]
    r = client.post("/models/x/train", files=[good, ("files", ("big.mp4", b"\0" * (3 << 20), "video/mp4"))])
    assert r.status_code == 413
    with open(__file__, "rb") as fh:  # a model that does not exist: refused before any folder is made
        assert client.post("/models/nope/score", files={"file": ("a.mp4", fh, "video/mp4")}).status_code == 404
    assert with_folders() <= before  # (earlier jobs may have finished and removed theirs meanwhile)


def test_handlers_never_run_blocking_io_on_the_event_loop(tmp_path):
    """Every route is a plain function, run in the thread pool: copying an upload or loading a
    model cannot stall the event loop, and with it every other client's requests."""
    import inspect

    from fastapi.routing import APIRoute

    from vlm_anomaly import load_settings
    from vlm_anomaly.api import create_app

    def api_routes(routes):
        for r in routes:
            if isinstance(r, APIRoute):
                yield r
            elif hasattr(r, "original_router"):  # an included router (FastAPI 0.16x wraps it)
                yield from api_routes(r.original_router.routes)

    app = create_app(load_settings(overrides={"detector": "ocsvm", "home": tmp_path, "encoder": "efficientnet"}))
    routes = list(api_routes(app.routes))
    assert {"/models/{name}/train", "/models/{name}/score"} <= {r.path for r in routes}
    assert [r.path for r in routes if inspect.iscoroutinefunction(r.endpoint)] == []


def test_bad_input_is_a_json_4xx(client, tmp_path):
    r = client.post("/models/..%2Fevil/train", files={"files": ("a.mp4", b"abc", "video/mp4")})
    assert r.status_code in (400, 404, 422) and "error" in r.json()
    r = client.post("/models/bad name!/train", files={"files": ("a.mp4", b"abc", "video/mp4")})
    assert r.status_code == 400 and "invalid model name" in r.json()["error"]
    assert client.get("/models/nope").status_code == 404
    assert client.get("/models/nope").json()["error"] == "no model named 'nope'"  # not the server's folder
    assert client.get("/events/999").status_code == 404
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/sources", json={"model": "nope", "source": "x.mp4"}).status_code == 404
    assert client.get("/events", params={"limit": 0}).status_code == 422
    for threshold in ("nan", "inf", "-inf"):  # would flag nothing or everything, and show threshold null
        r = client.post("/models/nope/score", files={"file": ("a.mp4", b"abc", "video/mp4")},
                        data={"threshold": threshold})
        assert r.status_code == 422 and "threshold" in r.json()["error"], r.text
    # a corrupt "video" trains into a failed job with the decoder's message, not a crash
    job = client.post(
        "/models/junk/train", files={"files": ("junk.mp4", b"not a video" * 100, "video/mp4")}
    ).json()
    j = wait_job(client, job)
    assert j["status"] == "failed" and j["error"].startswith("junk.mp4: "), j["error"]  # as uploaded, not 000-junk.mp4
    assert "uploads" not in j["error"] and "/" not in j["error"], j["error"]  # not its place on the server
    # invented method names are one "other" series in the metrics, not one each
    for i in range(5):
        assert client.request(f"FOO{i}", "/models").status_code == 405
    metrics = client.get("/metrics").text
    assert 'method="other"' in metrics and "FOO" not in metrics
    # a field the API does not know is refused, not ignored: {"start": 3} for start_s would have
    # taught the model the whole video as normal
    for path, body, field in (("/models/nope/normal", {"source": "x.mp4", "start": 3, "end": 5}, "start"),
                              ("/sources", {"model": "nope", "source": "x.mp4", "extra": 1}, "extra")):
        r = client.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == f"invalid request: body.{field}: Extra inputs are not permitted", r.text


def test_train_score_watch_ack_lifecycle(client, videos, api_home):
    # train from two uploaded normal videos: an async job with progress
    files = [
        ("files", (p.name, p.read_bytes(), "video/mp4"))
        for p in (videos["normal"], videos["normal_avi"])
    ]
    r = client.post("/models/street/train", files=files, data={"interval_ms": "250"})
    assert r.status_code == 202
    job = r.json()
    assert job["kind"] == "train" and job["status"] in ("queued", "running")
    seen: list = []
    j = wait_job(client, job, seen=seen)
    assert j["status"] == "done", j
    # the default motion detector reads its training clips at least every FIT_INTERVAL_MS (100), denser than
    # the 250 ms asked (which stays the model's scoring interval); the progress estimate knows it
    dense = sum(expected_samples(videos[k], min(250, FIT_INTERVAL_MS)) for k in ("normal", "normal_avi"))
    assert j["result"]["frames"] == dense > 96
    assert j["progress"]["done"] == j["progress"]["total"] >= dense  # total: the sampler's estimate
    assert j["progress"]["fraction"] == 1.0 and j["progress"]["stage"] == "done"
    listed = next(x for x in client.get("/jobs").json() if x["id"] == job["id"])
    assert "result" not in listed and listed["progress"] == j["progress"]  # the list leaves results out
    # a client polling the job sees it advance while it runs, never going back
    assert any(st == "running" and 0 < done < total for st, done, total in seen), seen
    done_seq = [done for _, done, _ in seen]
    assert done_seq == sorted(done_seq), seen
    [m] = client.get("/models").json()
    assert m["name"] == "street" and m["frames"] == dense
    # the model names its videos as they were uploaded (not 000-normal.mp4, their place in the job)
    shown = client.get("/models/street").json()
    assert shown["file"] == "street.vlmodel"  # by name: where the server keeps it is not the client's
    videos_named = [v["name"] for v in shown["training"]["videos"]]
    assert videos_named == [videos["normal"].name, videos["normal_avi"].name]
    assert client.get("/models/street").json()["training"]["frames"] == dense

    # score an uploaded video: per-frame results
    with open(videos["intruder"], "rb") as fh:
        job = client.post(
            "/models/street/score",
            files={"file": ("intruder.mp4", fh, "video/mp4")},
            data={"interval_ms": "500"},
        ).json()
    j = wait_job(client, job)
    assert j["status"] == "done", j
    frames = j["result"]["frames"]
    assert len(frames) == 24 and j["result"]["summary"]["frames"] == 24
    anomalous = [f["time"] for f in frames if f["label"] == "anomaly"]
    # the intruder is on screen 4-8 s; offline smoothing is centred (window 5 = +-1 s)
    assert anomalous and min(anomalous) >= 3.0 and max(anomalous) <= 9.5

    # a recording cut off part way: the end it lacks is a gap, named as uploaded, not by its place
    # on the server
    data = write_video(videos["intruder"].with_suffix(".mkv"), seconds=12, seed=0, anomaly_span=(4.0, 8.0)).read_bytes()
    job = client.post("/models/street/score", files={"file": ("cut.mkv", data[: len(data) * 45 // 100])}).json()
    j = wait_job(client, job)
    assert j["status"] == "done", j
    [gap] = j["result"]["summary"]["gaps"]
    assert gap["source"] == "cut.mkv" and "its header declares (cut short or damaged)" in gap["reason"], gap
    assert gap["end_time"] == 12.0 and j["result"]["summary"]["missed_s"] == gap["missed_s"] > 5.0
    assert str(api_home) not in str(j) and "uploads" not in str(j), j

    # watch the same video through the API (as fast as possible): one event, then acknowledge it
    r = client.post(  # under a camera name of the client's: events are found by it
        "/sources", json={"model": "street", "source": str(videos["intruder"]), "realtime": False, "camera": "front"}
    )
    assert r.status_code == 201
    wid = r.json()["id"]
    deadline = time.monotonic() + 120
    while (
        client.get(f"/sources/{wid}").json()["status"] == "running" and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    st = client.get(f"/sources/{wid}").json()
    assert st["status"] == "ended" and st["events"] == 1, st
    [ev] = client.get("/events", params={"acknowledged": False}).json()
    assert ev["camera"] == "front" and [e["id"] for e in client.get("/events", params={"source": "front"}).json()] \
        == [ev["id"]]
    assert client.get("/events", params={"source": "back"}).json() == []
    assert 4.0 <= ev["start_time"] <= 7.0 and 8.0 <= ev["end_time"] <= 11.0
    snap = client.get(f"/events/{ev['id']}/snapshot")
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    assert snap.content[:3] == b"\xff\xd8\xff"
    assert client.get(f"/events/{ev['id']}/clip").headers["content-type"] == "video/mp4"
    acked = client.post(f"/events/{ev['id']}/ack").json()
    assert acked["acknowledged"] and acked["acknowledged_by"].startswith("token-")
    assert client.get("/events", params={"acknowledged": False}).json() == []
    assert client.delete(f"/sources/{wid}").json()["status"] == "ended"

    metrics = client.get("/metrics").text
    assert 'vlm_anomaly_events_total{phase="end",source="' in metrics
    assert 'vlm_anomaly_jobs_total{kind="train",status="done"} 1.0' in metrics

    assert client.delete("/models/street").json() == {"deleted": "street"}
    assert client.get("/models").json() == []


def test_jobs_waiting_for_the_worker_are_capped(tmp_path):
    """Each waiting job keeps its uploads on disk until the one worker takes it: past
    MAX_WAITING_JOBS a new job is refused (429) before its upload is saved, so a client cannot
    fill the disk by queueing; once the worker moves on, jobs are taken again."""
    import threading

    from vlm_anomaly.api.jobs import MAX_WAITING_JOBS, JobManager, TooManyJobsError

    jobs = JobManager(tmp_path / "uploads")
    release = threading.Event()
    try:
        for _ in range(MAX_WAITING_JOBS + 1):  # one running (blocked), the rest waiting
            with jobs.folder() as (jid, folder):
                (folder / "video.mp4").write_bytes(b"x")
            jobs.submit(jid, "score", lambda progress: release.wait(30))
        with pytest.raises(TooManyJobsError) as refused, jobs.folder():
            pytest.fail("a job past the cap got a folder")
        assert refused.value.status_code == 429
        assert len(list(jobs.workdir.iterdir())) == MAX_WAITING_JOBS + 1 + 1  # (and .owner)
        release.set()
        deadline = time.monotonic() + 30
        while any(j.status != "done" for j in jobs.list()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.name for p in jobs.workdir.iterdir()] == [".owner"]  # each job's uploads went with it
        with jobs.folder():  # and a new job is taken again
            pass
    finally:
        release.set()
        jobs.shutdown()


def test_uploads_an_ended_api_left_are_removed_at_the_next_start(tmp_path):
    """A stop with jobs still waiting removes their uploads; what a killed API left (its folder's
    lock is free) goes at the next start; the folder of an API still running stays."""
    import threading

    from vlm_anomaly.api.jobs import JobManager

    uploads = tmp_path / "uploads"
    alive = JobManager(uploads)
    release = threading.Event()
    stopping = JobManager(uploads)
    try:
        for _ in range(3):  # one runs (blocked), two wait
            with stopping.folder() as (jid, folder):
                (folder / "video.mp4").write_bytes(b"x" * 1000)
            stopping.submit(jid, "score", lambda progress: release.wait(30))
        with alive.folder() as (jid, folder):
            (folder / "video.mp4").write_bytes(b"x")
        stopping.shutdown()
        assert len([p for p in stopping.workdir.iterdir() if p.is_dir()]) == 1  # the waiting ones are gone
        os.close(stopping._owner)  # the process ends (a kill does no more than this)
        JobManager(uploads).shutdown()
        assert not stopping.workdir.exists()
        assert (alive.workdir / jid / "video.mp4").exists()
    finally:
        release.set()
        alive.shutdown()
