"""Upload limits: a request body larger than its route may carry gets 413 with a JSON error before it
is read, and each uploaded video is saved only up to ``max_upload_mb``.

Why an ASGI middleware: the check must happen before the multipart parser spools the body to
disk, both for a declared Content-Length and for chunked bodies that grow past the limit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import UploadFile

from ..errors import InvalidVideoError, VlmAnomalyError
from ..redact import printable, redact_text

CHUNK = 1 << 20
#: videos one training request may upload (each up to ``max_upload_mb``)
MAX_VIDEOS_PER_REQUEST = 32
#: room in a request body for the multipart headers and the form fields besides the videos
FORM_OVERHEAD = 1 << 20


class UploadTooLargeError(VlmAnomalyError):
    status_code = 413


def upload_name(f: UploadFile) -> str:
    """What a client knows an upload by, as results, errors and models name it: its file name, no
    folders, credentials masked, control characters visible."""
    return printable(redact_text(Path(f.filename or "").name))[-200:] or "upload"


def save_uploads(files: list[UploadFile], folder: Path, max_bytes: int) -> list[str]:
    """Copy the uploaded videos into a job's folder, each at most ``max_bytes``; their paths.

    Blocking file I/O: called from the sync handlers, which FastAPI runs in its thread pool."""
    if len(files) > MAX_VIDEOS_PER_REQUEST:
        raise UploadTooLargeError(f"{len(files)} videos in one request; at most {MAX_VIDEOS_PER_REQUEST} are accepted")
    paths = []
    for i, f in enumerate(files):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(f.filename or "").name)[-80:].lstrip(".") or "upload"
        p = folder / f"{i:03d}-{name}"
        size = 0
        with open(p, "wb") as out:
            while chunk := f.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLargeError(
                        f"uploaded file {f.filename!r} is larger than the upload limit of "
                        f"{max_bytes / 2**20:g} MB per video (max_upload_mb)"
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidVideoError(f"uploaded file {f.filename!r} is empty")
        paths.append(str(p))
    return paths


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """The limit is ``per_video`` bytes a video; a whole body is capped at what its route may carry
    (many videos for ``/train``, one for ``/score``, none elsewhere: a JSON body is parsed in memory),
    so that an oversized request is refused before it is spooled to disk or parsed."""

    def __init__(self, app, per_video: int):
        self.app = app
        self.per_video = per_video

    def limit(self, scope: dict) -> int:
        path = scope["path"]
        videos = MAX_VIDEOS_PER_REQUEST if path.endswith("/train") else 1 if path.endswith("/score") else 0
        return self.per_video * videos + FORM_OVERHEAD

    async def _reject(self, send, limit: int) -> None:
        error = f"request body larger than the upload limit of {limit / 2**20:g} MB for this request"
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit(scope)
        for key, value in scope.get("headers", []):  # every Content-Length a request declares, not the last
            if key == b"content-length" and value.strip().isdigit() and int(value) > limit:
                return await self._reject(send, limit)
        seen = 0
        state = {"started": False, "exceeded": False, "replaced": False}

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    state["exceeded"] = True
                    raise _TooLarge
            return msg

        async def guarded_send(msg):
            # the body parser may turn our exception into its own 400: answer 413 instead
            if msg["type"] == "http.response.start":
                if state["exceeded"]:
                    state["replaced"] = True
                    state["started"] = True
                    return await self._reject(send, limit)
                state["started"] = True
            elif state["replaced"]:
                return None
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not state["started"]:
                await self._reject(send, limit)
