"""The page behind `captchagen tune-style` (FastAPI on uvicorn, the `serve` extra, guarded as `label` is).

It shows pool images beside captchas rendered in the style the page sends, with their distance to the pool,
and saves that style and its fonts. Nothing in a request is opened as a path: pool images and fonts are named
by their place in the page's lists. Every POST carries the page's token (captchagen.web.guard_page).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from captchagen.errors import BadInput
from captchagen.fitting.tuning import SHOWN, Tuner
from captchagen.preview import png_bytes
from captchagen.web import ApiError, error, guard_page, read_body

TOKEN_HEADER = "x-style-token"
MAX_BODY = 64 * 1024  # bytes of a style and its fonts
NO_FLAGS = ("", "")  # no option sets the body limits: the errors name none
PNG = {"Cache-Control": "no-store"}


def _data_url(im: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode()


def create_app(tuner: Tuner, out: Path, *, loopback_port: int | None = None, token: str | None = None) -> FastAPI:
    """The app. `out`: where a save writes. `loopback_port`: the port, when the server listens on a loopback
    address only (Host is checked)."""
    token = token or secrets.token_urlsafe(24)
    page = resources.files("captchagen.fitting").joinpath("web/style.html").read_text(encoding="utf-8")
    page = page.replace("__TOKEN__", token)
    app = FastAPI(title="captchagen tune-style", docs_url=None, redoc_url=None)
    guard_page(app, token=token, header=TOKEN_HEADER, loopback_port=loopback_port, what="style page")
    saving = threading.Lock()  # two tabs saving at once: one after the other

    async def body(request: Request) -> tuple[Any, ...]:
        raw = await read_body(request, MAX_BODY, 10.0, flags=NO_FLAGS)
        try:
            data = json.loads(raw)
            seed = data.get("seed", 0)
            values, fonts = data["style"], data["fonts"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ApiError(400, 'expected a JSON body {"style": {...}, "fonts": [...], "seed": <number>}') from None
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
            raise ApiError(400, "`seed` must be a whole number from 0")
        try:
            style, chosen = tuner.check(values, fonts)
        except BadInput as e:
            raise ApiError(422, str(e)) from None
        return style, chosen, seed

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/start")
    async def start() -> dict:
        chosen = [tuner.fonts.index(f) for f in tuner.start.fonts]
        s = tuner.settings
        return {
            "fields": tuner.fields(),
            "values": tuner.values(tuner.start.style),
            "fonts": [tuner.font(i) for i in chosen],
            "candidates": len(tuner.fonts),
            "start": tuner.start.source,
            "pool": {"images": tuner.pool.total, "sampled": len(tuner.images), "shown": min(SHOWN, len(tuner.images))},
            "size": list(tuner.pool.size),
            "alphabet": s.alphabet,
            "length": [s.min_len, s.max_len],
            "floor": tuner.floor,
            "out": str(out),
        }

    @app.get("/pool/{i}")
    async def pool_image(i: int) -> Response:
        if not 0 <= i < min(SHOWN, len(tuner.images)):
            return error(404, f"no pool image {i} is shown")
        return Response(png_bytes(tuner.images[i]), media_type="image/png", headers=PNG)

    @app.get("/api/fonts")
    async def fonts(q: str = "") -> dict:
        found, matched = tuner.font_list(q[:100])
        return {"fonts": found, "matched": matched}

    @app.get("/font/{i}")
    async def font_preview(i: int) -> Response:
        try:
            data = await run_in_threadpool(tuner.font_preview, i)
        except (IndexError, OSError):
            return error(404, f"no candidate font {i}")
        return Response(data, media_type="image/png", headers=PNG)

    @app.post("/api/look")
    async def look(request: Request) -> dict:
        style, chosen, seed = await body(request)
        seen = await run_in_threadpool(tuner.look, style, chosen, seed)
        return {"distance": seen.distance, "floor": tuner.floor, "groups": seen.groups,
                "images": [_data_url(im) for im in seen.images[:SHOWN]]}  # fmt: skip

    @app.post("/api/save")
    async def save(request: Request) -> dict:
        style, chosen, seed = await body(request)

        def write() -> dict[str, Any]:
            with saving:
                return tuner.save(out, style, chosen, seed)

        try:
            record = await run_in_threadpool(write)
        except BadInput as e:
            raise ApiError(409, str(e)) from None
        except OSError as e:
            raise ApiError(507, f"cannot save in {out}: {e.strerror or e}") from None
        return {"distance": record["distance"], "floor": record["floor"], "out": str(out),
                "files": ["style.toml", "fonts/", "sheet.png", "tune.json"]}  # fmt: skip

    return app
