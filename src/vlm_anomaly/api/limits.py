"""Request body size limit: bodies larger than their route may carry get 413 with a JSON error.

Why an ASGI middleware: the check must happen before the multipart parser spools the body to
disk, both for a declared Content-Length and for chunked bodies that grow past the limit. The
per-video limit itself (``max_upload_mb``) is checked where each upload is saved.
"""

from __future__ import annotations

import json
from collections.abc import Callable


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """``max_bytes``: a fixed limit, or a function of the ASGI scope (a limit per route)."""

    def __init__(self, app, max_bytes: int | Callable[[dict], int]):
        self.app = app
        self.max_bytes = max_bytes if callable(max_bytes) else (lambda scope: max_bytes)

    async def _reject(self, send, limit: int) -> None:
        body = json.dumps(
            {"error": f"request body larger than the upload limit of {limit / 2**20:g} MB for this request"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes(scope)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > limit:
                        return await self._reject(send, limit)
                except ValueError:
                    pass
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
