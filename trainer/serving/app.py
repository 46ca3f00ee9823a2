"""The HTTP service behind `captchagen serve` (FastAPI on uvicorn; the `serve` extra).

POST /predict reads images sent in the request itself (the raw body, or multipart file fields) and nothing
else: no path, URL or name in a request is ever opened. Every request is bounded (body bytes, pixels per
image, images per request), and a bad one gets a 4xx JSON error while the server keeps serving.

Requests in flight together are read together: while the model reads one batch, new requests queue, and the
next batch takes all of them, up to --max-batch images. The model runs on one thread, so PyTorch's (or ONNX
Runtime's) own threads use the cores without competing with each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from captchagen.arithmetic import answer as solve
from captchagen.web import ApiError, error, read_body
from captchagen.workers import cpu_count
from trainer.data.preprocess import BadImage, open_image, to_array
from trainer.inference.reader import Reader

log = logging.getLogger("captchagen.serve")

MAX_NAME = 200  # longest upload file name echoed back


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 2**20
    max_pixels: int = 4_000_000  # per image; a captcha has about 20,000
    max_images: int = 64  # per request
    body_timeout: float = 30.0  # seconds for the whole body to arrive


STATUS_OF_BAD_IMAGE = {"too_large": 413, "not_image": 415, "unreadable": 422}  # images come as bytes: never "missing"


class Batcher:
    """Reads the images of concurrent requests as shared batches, on one inference thread."""

    def __init__(self, reader: Reader, max_batch: int, beam: int) -> None:
        self.reader = reader
        self.max_batch = max_batch
        self.beam = beam
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="captchagen-model")
        self.pending: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self.worker: asyncio.Task | None = None
        self.batches = 0
        self.images = 0

    async def read(self, arrays: np.ndarray) -> list[tuple[str, float]]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((arrays, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        group = [self.pending.popleft()]  # a request bigger than max_batch is read in parts (_read)
        size = len(group[0][0])
        while self.pending and size + len(self.pending[0][0]) <= self.max_batch:
            group.append(self.pending.popleft())
            size += len(group[-1][0])
        return group

    def _read(self, batch: np.ndarray) -> list[tuple[str, float]]:
        """The model over `batch` at most max_batch images at a time: one request of 1,000 images is not one
        batch of 1,000 (its memory and its wait for every other request)."""
        results: list[tuple[str, float]] = []
        for start in range(0, len(batch), self.max_batch):
            results += self.reader.read_arrays(batch[start : start + self.max_batch], self.beam)
            self.batches += 1
        return results

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            group = [(a, f) for a, f in self._take() if not f.done()]  # done: the client went away
            if not group:
                continue
            batch = np.concatenate([a for a, _ in group])
            try:
                results = await loop.run_in_executor(self.executor, self._read, batch)
            except Exception as e:  # handed to every waiting request, which answers 500
                for _, f in group:
                    if not f.done():
                        f.set_exception(e)
                continue
            self.images += len(batch)
            start = 0
            for arrays, f in group:
                if not f.done():
                    f.set_result(results[start : start + len(arrays)])
                start += len(arrays)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def request_images(request: Request, limits: Limits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image in the request: every multipart file field, or else the raw body."""
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):

        async def replay() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=limits.max_images, max_fields=100)
        except HTTPException as e:
            if "Too many files" in str(e.detail):
                raise too_many_images(limits) from None
            raise
        try:
            files = [
                (str(v.filename or k)[:MAX_NAME], await v.read())
                for k, v in form.multi_items()
                if isinstance(v, UploadFile)
            ]
        finally:
            await form.close()
        if not files:
            raise ApiError(400, "no image in the request: send image files as multipart fields or the raw body")
    else:
        if not body:
            raise ApiError(400, "empty request body: send an image as the body or as multipart file fields")
        files = [("body", body)]
    if len(files) > limits.max_images:
        raise too_many_images(limits)
    return files


def too_many_images(limits: Limits) -> ApiError:
    return ApiError(413, f"more than {limits.max_images} images in one request (--max-images)")


def to_arrays(files: list[tuple[str, bytes]], reader: Reader, limits: Limits) -> np.ndarray:
    arrays = []
    for i, (name, data) in enumerate(files):
        try:
            image = open_image(io.BytesIO(data), max_pixels=limits.max_pixels, name=f"image {i + 1} ({name})")
        except BadImage as e:
            flag = " (--max-pixels)" if e.reason == "too_large" else ""  # the setting that decides it
            raise ApiError(STATUS_OF_BAD_IMAGE.get(e.reason, 422), f"{e}{flag}") from None
        arrays.append(to_array(image, reader.pre))
    return np.stack(arrays)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "(unknown)"


def create_app(
    reader: Reader, limits: Limits = Limits(), max_batch: int = 64, beam: int = 0, answer: bool = False
) -> FastAPI:
    """The app; with `answer`, each prediction also has the answer of its reading as an arithmetic captcha
    (None when the reading is not an expression)."""
    # A malformed upload is the client's error and gets a 400 answer; the parser need not also log it.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    batcher = Batcher(reader, max_batch, beam)
    page = resources.files("trainer.serving").joinpath("web/index.html").read_text(encoding="utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="captchagen", docs_url=None, redoc_url=None, lifespan=lifespan)
    counts = {"requests": 0, "rejected": 0}
    # Decoding runs in threads; at most this many requests decode at once, which bounds the memory a burst of
    # large images can take (each image is shrunk to model size before the next is decoded).
    decoding = asyncio.Semaphore(2 * cpu_count())

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        counts["rejected"] += 1
        return error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Nobody will read this answer; one line in the log is all a client that went away deserves.
        counts["rejected"] += 1
        log.warning(
            "client %s closed the connection before sending all of its %s %s",
            _client(request),
            request.method,
            request.url.path,
        )
        return error(400, "the client closed the connection before sending the whole request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises the exception after this answer, and uvicorn logs it with its traceback, once.
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": reader.name,
            "format": reader.kind,
            "alphabet": reader.alphabet.chars,
            "reads": reader.reads,
            "input": {"height": reader.pre.height, "width": reader.pre.width, "channels": reader.pre.channels},
            "max_label_len": reader.max_label_len,
            "lengths": reader.lengths,
            "case": reader.case,
            "answer": answer,
            "limits": asdict(limits),
            "max_batch": max_batch,
            "beam": beam,
            "served": {**counts, "images": batcher.images, "batches": batcher.batches},
        }

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        """Read the images in the request as one batch: {"model", "predictions": [{"name", "text",
        "confidence"}]} in the order sent ("answer" too, with `answer`)."""
        counts["requests"] += 1
        files = await request_images(request, limits)
        async with decoding:
            arrays = await run_in_threadpool(to_arrays, files, reader, limits)
        results = await batcher.read(arrays)
        return {
            "model": reader.name,
            "predictions": [
                {"name": name, "text": text, "confidence": confidence, **({"answer": solve(text)} if answer else {})}
                for (name, _), (text, confidence) in zip(files, results, strict=True)
            ],
        }

    return app
