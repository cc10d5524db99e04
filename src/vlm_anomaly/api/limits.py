"""Request body size limit: uploads larger than ``max_upload_mb`` get 413 with a JSON error.

Why an ASGI middleware: the check must happen before the multipart parser spools the body to
disk, both for a declared Content-Length and for chunked bodies that grow past the limit.
"""

from __future__ import annotations

import json


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send) -> None:
        body = json.dumps(
            {"error": f"request body larger than the upload limit of {self.max_bytes / 1e6:g} MB"}
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
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > self.max_bytes:
                        return await self._reject(send)
                except ValueError:
                    pass
        seen = 0
        state = {"started": False, "exceeded": False, "replaced": False}

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    state["exceeded"] = True
                    raise _TooLarge
            return msg

        async def guarded_send(msg):
            # the body parser may turn our exception into its own 400: answer 413 instead
            if msg["type"] == "http.response.start":
                if state["exceeded"]:
                    state["replaced"] = True
                    state["started"] = True
                    return await self._reject(send)
                state["started"] = True
            elif state["replaced"]:
                return None
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not state["started"]:
                await self._reject(send)
