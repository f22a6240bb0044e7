"""The mock's memory: the request log, the answers given per idempotency key, the faults and callbacks asked for.

Everything lives in one process and one event loop; the bookkeeping of a call happens between two
awaits, so two calls never interleave inside it and no lock is needed.
"""

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import Response

from mock_providers.models import CallbackConfig, CallbackEntry, FaultConfig, FaultKind, RequestEntry

OUTBOUND_TIMEOUT_SECONDS = 10  # for the callbacks and inbound webhooks the mock posts


@dataclass(frozen=True)
class Answer:
    """An HTTP answer kept whole, so that a replayed idempotency key gets exactly the first one."""

    status: int
    content: bytes = b""
    media_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    provider_message_id: str | None = None

    @classmethod
    def json(
        cls, status: int, payload: Any, provider_message_id: str | None = None, headers: dict[str, str] | None = None
    ) -> "Answer":
        return cls(status, orjson.dumps(payload), "application/json", headers or {}, provider_message_id)

    def response(self) -> Response:
        return Response(self.content, self.status, headers=self.headers, media_type=self.media_type)


class FaultPlan:
    """The faults asked for: the `next` ones first, in order, then random ones drawn from a seeded generator,
    one draw per new call, so the same seed and the same calls give the same faults."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.queued: deque[FaultKind] = deque(config.next)
        self.random = random.Random(config.seed)

    def draw(self) -> FaultKind | None:
        if self.queued:
            return self.queued.popleft()
        if self.config.rate and self.random.random() < self.config.rate:
            return self.random.choice(self.config.kinds)
        return None

    def remaining(self) -> FaultConfig:
        return self.config.model_copy(update={"next": list(self.queued)})


class CallbackPlan:
    """The status callbacks to post for each accepted Twilio message, in order or shuffled (seeded)."""

    def __init__(self, config: CallbackConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)

    def statuses(self) -> list[str]:
        statuses = list(self.config.statuses)
        if self.config.shuffle:
            self.random.shuffle(statuses)
        return statuses


@dataclass
class MockState:
    requests: list[RequestEntry] = field(default_factory=list)
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)  # by (provider, idempotency key)
    faults: FaultPlan | None = None
    callbacks: CallbackPlan | None = None
    callbacks_posted: list[CallbackEntry] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)  # kept referenced until done, as asyncio asks
    callback_tasks: set[asyncio.Task] = field(default_factory=set)
    _http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for what the mock posts itself; made on first use, inside the server's event loop."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=OUTBOUND_TIMEOUT_SECONDS)
        return self._http

    def draw_fault(self) -> tuple[FaultKind | None, FaultConfig | None]:
        if self.faults is None:
            return None, None
        return self.faults.draw(), self.faults.config

    def spawn(self, coroutine: Coroutine, group: set[asyncio.Task] | None = None) -> asyncio.Task:
        """A background task that outlives the request that started it (a late answer, callbacks)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        for tasks in (self.tasks, group if group is not None else self.tasks):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return task

    def stop_callbacks(self) -> None:
        self.callbacks = None
        self.callbacks_posted.clear()
        for task in list(self.callback_tasks):
            task.cancel()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
