"""An sse-starlette app (not ours): ``/numbers`` sends events ``PER_CONNECTION`` at a time,
resuming after ``Last-Event-ID``, and ``204`` once all ``TOTAL`` were sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOTAL = 25
PER_CONNECTION = 4
resumes: list[str | None] = []


async def numbers(request: Request) -> Response:
    last = request.headers.get("last-event-id")
    resumes.append(last)
    start = int(last) + 1 if last else 1
    if start > TOTAL:
        return Response(status_code=204)

    async def events() -> AsyncIterator[dict[str, Any]]:
        for number in range(start, min(start + PER_CONNECTION, TOTAL + 1)):
            event = {"id": str(number), "event": "number", "data": json.dumps({"n": number})}
            yield {**event, "retry": 30} if number == start else event

    return EventSourceResponse(events(), ping=60)


async def log(request: Request) -> JSONResponse:
    return JSONResponse(resumes)


app = Starlette(routes=[Route("/numbers", numbers), Route("/log", log)])
