"""Twilio's status callbacks: after answering a new message, Twilio posts its status changes, form-encoded
and signed with the account's auth token, to the message's StatusCallback."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from twilio.request_validator import RequestValidator

from mock_providers.models import CallbackEntry
from mock_providers.state import CallbackPlan, MockState

FAILED_STATUSES = {"failed", "undelivered"}  # the ones that carry an ErrorCode


@dataclass(frozen=True)
class CallbackTarget:
    """What a status callback says about one accepted message, and where it goes."""

    url: str
    auth_token: str
    account_sid: str
    message_sid: str
    sender: str | None
    recipient: str


def schedule(state: MockState, target: CallbackTarget) -> None:
    """Starts posting the configured callbacks for a message just answered; nothing when none are configured."""
    if state.callbacks is not None:
        state.spawn(post_callbacks(state, state.callbacks, target), group=state.callback_tasks)


async def post_callbacks(state: MockState, plan: CallbackPlan, target: CallbackTarget) -> None:
    for status in plan.statuses():
        await asyncio.sleep(plan.config.delay_seconds)
        state.callbacks_posted.append(await post_callback(state.http, target, status, plan.config.error_code))


def callback_form(target: CallbackTarget, status: str, error_code: int) -> dict[str, str]:
    form = {
        "MessageSid": target.message_sid,
        "SmsSid": target.message_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": target.account_sid,
        "From": target.sender or "",
        "To": target.recipient,
        "ApiVersion": "2010-04-01",
    }
    if status in FAILED_STATUSES:
        form["ErrorCode"] = str(error_code)
    return form


async def post_callback(http: httpx.AsyncClient, target: CallbackTarget, status: str, error_code: int) -> CallbackEntry:
    form = callback_form(target, status, error_code)
    signature = RequestValidator(target.auth_token).compute_signature(target.url, form)
    answer_status, error = None, None
    try:
        response = await http.post(target.url, data=form, headers={"X-Twilio-Signature": signature})
        answer_status = response.status_code
    except httpx.HTTPError as failure:
        error = str(failure) or type(failure).__name__
    return CallbackEntry(
        url=target.url,
        message_sid=target.message_sid,
        status=status,
        answer_status=answer_status,
        error=error,
        posted_at=datetime.now(UTC),
    )
