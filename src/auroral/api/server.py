"""The HTTP front door: aiohttp in, ``Pipeline`` through, bytes out.

It knows nothing about AWS services; besides the pipeline it serves one route of its own,
``GET /_auroral/health``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from auroral.api import protocol
from auroral.api.pipeline import Peer, Pipeline

HEALTH_PATH = "/_auroral/health"
MAX_BODY = 16 * 1024 * 1024


def make_app(pipeline: Pipeline, health: Callable[[], Mapping[str, Any]]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw_path, _, query = request.raw_path.partition("?")
        if request.method == "GET" and raw_path == HEALTH_PATH:
            return web.Response(body=json.dumps(health()).encode(), content_type="application/json")
        body = await request.read()
        req = protocol.HttpRequest(
            method=request.method,
            path=raw_path,
            query=query,
            headers=request.headers,
            body=body,
        )
        peer = Peer(
            source_ip=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""),
            secure=request.secure,
        )
        resp = await pipeline.handle(req, peer)
        return web.Response(status=resp.status, body=resp.body, headers=resp.headers)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
