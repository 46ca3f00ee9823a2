"""The page behind `captchagen label` (FastAPI on uvicorn, the `serve` extra, with serve's safety rules).

Nothing in a request is ever opened as a path: the page names an image by its place in the queue, and the
server looks its file up. Request bodies are bounded. A request that changes files (an answer, a skip, an
undo) must carry the page's token, and on a loopback address only loopback names are answered
(captchagen.web.guard_page).
"""

from __future__ import annotations

import json
import mimetypes
import secrets
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from captchagen.errors import BadInput
from captchagen.web import ApiError, error, guard_page, read_body
from trainer.labeling.queue import Item, LabelQueue

NO_FLAGS = ("", "")  # label has no option for its body limits: the errors name none
MAX_BODY = 4096  # bytes of an answer
TOKEN_HEADER = "x-label-token"


def _item(item: Item | None) -> dict | None:
    if item is None:
        return None
    return {
        "key": item.key,
        "name": item.path.name,
        "reading": item.reading,
        "confidence": item.confidence,
        "src": f"/image/{item.key}",
    }


def _state(queue: LabelQueue, **extra) -> dict:
    return {"item": _item(queue.next()), "stats": queue.stats(), **extra}


def create_app(queue: LabelQueue, *, loopback_port: int | None = None, token: str | None = None) -> FastAPI:
    """The app. `loopback_port`: the port, when the server listens on a loopback address only (Host is checked)."""
    token = token or secrets.token_urlsafe(24)
    page = resources.files("trainer.labeling").joinpath("web/label.html").read_text(encoding="utf-8")
    page = page.replace("__TOKEN__", token)
    app = FastAPI(title="captchagen label", docs_url=None, redoc_url=None)
    guard_page(app, token=token, header=TOKEN_HEADER, loopback_port=loopback_port, what="labelling page")

    async def body(request: Request) -> dict:
        raw = await read_body(request, MAX_BODY, 10.0, flags=NO_FLAGS)
        try:
            data = json.loads(raw)
            key = data["key"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, 'expected a JSON body {"key": <number>, ...}') from None
        if not isinstance(key, int) or isinstance(key, bool):
            raise ApiError(400, "`key` must be a whole number")
        return data

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/next")
    async def next_item() -> dict:
        return _state(queue)

    @app.get("/image/{key}")
    async def image(key: int) -> Response:
        try:
            path = queue.item(key).path
            data = await run_in_threadpool(path.read_bytes)
        except (KeyError, OSError):
            return error(404, f"no image {key} waits to be labelled")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})

    @app.post("/api/answer")
    async def answer(request: Request) -> dict:
        data = await body(request)
        label = data.get("label")
        if not isinstance(label, str):
            raise ApiError(400, "`label` must be a string")
        try:
            written = await run_in_threadpool(queue.answer, data["key"], label)
        except BadInput as e:
            raise ApiError(422, str(e)) from None
        except KeyError:
            raise ApiError(409, f"image {data['key']} is not waiting for a label (answered already?)") from None
        return _state(queue, written=written.name)

    @app.post("/api/skip")
    async def skip(request: Request) -> dict:
        data = await body(request)
        try:
            queue.skip(data["key"])
        except KeyError:
            raise ApiError(409, f"image {data['key']} is not waiting for a label") from None
        return _state(queue)

    @app.post("/api/undo")
    async def undo(request: Request) -> dict:
        await read_body(request, MAX_BODY, 10.0, flags=NO_FLAGS)
        try:
            undone = await run_in_threadpool(queue.undo)
        except BadInput as e:
            raise ApiError(422, str(e)) from None
        return _state(queue, undone=undone.path.name if undone else None)

    return app
