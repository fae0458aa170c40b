"""Bounded admission (pure ASGI): overload answers 503 with Retry-After at once instead of queueing without end.

At most `max_in_flight` HTTP requests are worked on at once in this process; up to `max_queue`
more wait (first come, first served) for at most `wait_seconds`. A request arriving to a full
queue, or to a queue it would not leave within half of `wait_seconds` at the recent pace (a
moving average of the time between completions while requests wait; half: the pace varies), is answered `503 Unavailable` with
`Retry-After` immediately, before its body is read; one whose wait runs out anyway gets the same
answer then. An admitted request runs to its end: what it
committed was answered 201. Probes and metrics (`/healthz`, `/readyz`, `/metrics`) bypass the
queue, so an overloaded process still reports itself alive.
"""

import asyncio
import collections
import math
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.problems import error_response

BYPASS = frozenset({"/healthz", "/readyz", "/metrics"})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, max_queue: int, wait_seconds: float):
        self.app = app
        self.max_in_flight, self.max_queue, self.wait_seconds = max_in_flight, max_queue, wait_seconds
        self.in_flight = 0
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.refused = 0  # 503s answered, for tests and metrics
        self.interval = 0.0  # moving average of the time between completions while the process is full
        self._last_done: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in BYPASS:
            return await self.app(scope, receive, send)
        if not await self._admit():
            self.refused += 1
            retry = str(max(1, math.ceil(self.wait_seconds)))
            detail = "the service is at capacity; nothing was recorded; retry after the given seconds"
            response = error_response(503, "Unavailable", detail, {"Retry-After": retry, "Connection": "close"})
            return await response(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:
            self._pace()
            self._release()

    async def _admit(self) -> bool:
        if self.in_flight < self.max_in_flight and not self.waiting:
            self.in_flight += 1
            return True
        expected_wait = (len(self.waiting) + 1) * self.interval
        if len(self.waiting) >= self.max_queue or expected_wait > self.wait_seconds / 2:  # margin: the pace varies
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.wait_seconds)
            return True  # the releasing request handed its slot over (in_flight unchanged)
        except TimeoutError:
            if turn.done():
                return True  # handed a slot just as the wait ran out: take it
            self._withdraw(turn)
            return False
        except asyncio.CancelledError:  # the client went away while waiting
            if turn.done():
                self._release()
            else:
                self._withdraw(turn)
            raise

    def _pace(self) -> None:
        """Time between completions, counted only while the process is full (idle gaps are no pace)."""
        now = time.perf_counter()
        if self.waiting or self.in_flight >= self.max_in_flight:
            if self._last_done is not None:
                self.interval += 0.1 * (now - self._last_done - self.interval)
            self._last_done = now
        else:
            self._last_done = None

    def _withdraw(self, turn: asyncio.Future[None]) -> None:
        turn.cancel()
        try:
            self.waiting.remove(turn)
        except ValueError:
            pass

    def _release(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to the oldest waiter
                return
        self.in_flight -= 1
