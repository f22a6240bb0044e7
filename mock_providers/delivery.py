"""What every provider call goes through: the log, the idempotency memory and the faults.

A key accepted once gets its first answer again, listed with `accepted: false` and without faults
(the provider already has the message). A 429, 500 or 400 accepts nothing, so the next call with
that key is a new one. A `timeout` accepts at once and only answers `delay_seconds` late, so a
client that gave up and retries with the same key gets the replay.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Response

from mock_providers.models import FaultKind, RequestEntry
from mock_providers.state import Answer, MockState

REJECTIONS = {"429": "rate limited", "500": "internal error", "400": "invalid destination"}


@dataclass
class Call:
    """A provider request, read: what the log shows of it and how the provider answers it."""

    provider: str
    path: str
    idempotency_key: str | None
    to: str | None
    body: str | None
    accept: Callable[[], Answer]  # the success answer, with a new provider id
    reject: Callable[[FaultKind, int], Answer]  # the answer to a 429, 500 or 400, given Retry-After
    refusal: Answer | None = None  # the request itself is refused (no auth, no To): no fault, nothing accepted
    on_answered: Callable[[Answer], None] | None = None  # after a new acceptance was answered (callbacks)


def json_rejection(kind: FaultKind, retry_after: int) -> Answer:
    """The rejection of the JSON providers: `{"error": ...}`, with Retry-After on a 429."""
    return Answer.json(int(kind), {"error": REJECTIONS[kind]}, headers=retry_after_header(kind, retry_after))


def retry_after_header(kind: FaultKind, retry_after: int) -> dict[str, str]:
    return {"Retry-After": str(retry_after)} if kind == "429" else {}


async def deliver(state: MockState, call: Call) -> Response:
    record = RequestEntry(
        provider=call.provider,
        path=call.path,
        idempotency_key=call.idempotency_key,
        to=call.to,
        body=call.body,
        received_at=datetime.now(UTC),
    )
    state.requests.append(record)  # listed at once, with status null until answered
    if call.refusal is not None:
        return answered(record, call.refusal)
    memory_key = (call.provider, call.idempotency_key)
    if call.idempotency_key is not None and (first := state.answers.get(memory_key)) is not None:
        return answered(record, first)
    fault, config = state.draw_fault()
    record.fault = fault
    if fault in REJECTIONS:
        return answered(record, call.reject(fault, config.retry_after))
    answer = call.accept()
    if call.idempotency_key is not None:
        state.answers[memory_key] = answer
    record.accepted = True
    record.provider_message_id = answer.provider_message_id
    if fault == "timeout":
        # Shielded: a client that gives up must not cancel the late answer nor what follows it.
        await asyncio.shield(state.spawn(answer_late(record, answer, config.delay_seconds, call.on_answered)))
        return answer.response()
    response = answered(record, answer)
    if call.on_answered is not None:
        call.on_answered(answer)
    return response


def answered(record: RequestEntry, answer: Answer) -> Response:
    record.status = answer.status
    record.provider_message_id = answer.provider_message_id
    return answer.response()


async def answer_late(
    record: RequestEntry, answer: Answer, delay_seconds: float, on_answered: Callable[[Answer], None] | None
) -> None:
    await asyncio.sleep(delay_seconds)
    record.status = answer.status
    if on_answered is not None:
        on_answered(answer)
