"""uvicorn's HTTP/1.1 protocol with a deadline for the request head, against slow clients (slowloris).

uvicorn closes an idle keep-alive connection, but any byte restarts that clock and a fresh connection has no
clock at all, so a client that sends half its headers and waits holds its connection forever; a thousand
such clients fill the server's connection limit and every good request is refused. Here a connection that
has not sent a complete request head within `header_timeout` seconds of opening (or of its last answer) is
closed, whatever it trickles meanwhile. The body has its own deadline, in the app (a 408 answer).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def with_header_deadline(header_timeout: float) -> type[H11Protocol]:
    """An H11Protocol class that closes connections which take longer than `header_timeout` to send a head."""

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._waiting_for_head():
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

        def _arm(self) -> None:
            self._disarm()
            if self._waiting_for_head():
                self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
