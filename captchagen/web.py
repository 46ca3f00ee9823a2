"""What captchagen's HTTP pages and service share (FastAPI on uvicorn, the `serve` extra): bounded request
bodies, JSON errors, and the guard of a local page that writes files (`label`, `tune-style`).

The guard: a request that changes files must carry the token the page was served with, in a header no other
site can make a browser send; and while the server listens on a loopback address it answers only requests
addressed to one (a DNS-rebinding page cannot reach it under its own name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DRAIN_FACTOR = 8  # read and drop up to this many times the body limit, so the client sees the 413 answer
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def read_body(
    request: Request,
    limit: int,
    timeout: float | None = None,
    flags: tuple[str, str] = ("--max-body-mb", "--body-timeout"),
) -> bytes:
    """The whole body, or ApiError 413 once it passes `limit` bytes (by Content-Length or by counting), or
    ApiError 408 if it has not all arrived `timeout` seconds after the head (a client sending it slowly).
    `flags`: the options that set the two limits, named in the errors ("" where no option sets one)."""
    size_flag, time_flag = (f" ({f})" if f else "" for f in flags)
    try:
        return await asyncio.wait_for(_read_body(request, limit, size_flag), timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s{time_flag}") from None


async def _read_body(request: Request, limit: int, size_flag: str) -> bytes:
    declared = request.headers.get("content-length")
    too_big = False
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise ApiError(400, f"bad Content-Length header {declared[:40]!r}") from None
    too_big_error = ApiError(413, f"request body is over the {limit:,}-byte limit{size_flag}")
    if too_big and request.headers.get("expect", "").lower() == "100-continue":
        raise too_big_error  # the client waits for a go-ahead before sending the body: it never gets one
    body = bytearray()
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            too_big = True
        if too_big:
            body.clear()
            if seen > DRAIN_FACTOR * limit:
                break  # stop reading; the connection is closed after the answer
        else:
            body += chunk
    if too_big:
        raise too_big_error
    return bytes(body)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or `localhost`) is a loopback address."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host) if host == "localhost" else host).is_loopback
    except (ValueError, OSError):
        return False


def guard_page(app: FastAPI, *, token: str, header: str, loopback_port: int | None, what: str) -> None:
    """Refuse a POST without `token` in `header` (403), and, with `loopback_port` (the server listens on a
    loopback address only), any request whose Host is not a loopback name with that port (421). `what`: the
    page, as the errors name it ("labelling page")."""
    allowed = {f"{name}:{loopback_port}" for name in LOOPBACK_NAMES} if loopback_port is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if allowed is not None and request.headers.get("host", "") not in allowed:
            return error(421, f"this {what} answers only on its own loopback address")
        if request.method == "POST" and not secrets.compare_digest(request.headers.get(header, ""), token):
            return error(403, f"missing or wrong token for this {what}: reload the page")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message)
