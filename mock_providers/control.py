"""The mock's own endpoints, under `/_`: what it received, the faults and callbacks to inject, inbound webhooks."""

import httpx
from fastapi import APIRouter, HTTPException, Request

from mock_providers.inbound import send_inbound
from mock_providers.models import (
    CallbackConfig,
    CallbackEntry,
    Cleared,
    FaultConfig,
    InboundAnswer,
    InboundRequest,
    RequestEntry,
)
from mock_providers.state import CallbackPlan, FaultPlan, MockState

router = APIRouter(tags=["control"])


def state_of(request: Request) -> MockState:
    return request.app.state.mock


@router.get("/_requests", response_model=list[RequestEntry])
async def list_requests(request: Request) -> list[RequestEntry]:
    """Every provider call, in arrival order; a delayed one shows `status: null` until it is answered."""
    return state_of(request).requests


@router.delete("/_requests", response_model=Cleared)
async def clear_requests(request: Request) -> Cleared:
    """Clears the log; the idempotency memory stays, as the provider still has the messages."""
    state_of(request).requests.clear()
    return Cleared()


@router.get("/_faults", response_model=FaultConfig | None)
async def show_faults(request: Request) -> FaultConfig | None:
    """The faults in force, with the `next` ones not yet used; null when none."""
    faults = state_of(request).faults
    return faults.remaining() if faults else None


@router.put("/_faults", response_model=FaultConfig)
async def set_faults(config: FaultConfig, request: Request) -> FaultConfig:
    """Replaces the fault configuration (and restarts its random generator from `seed`)."""
    state_of(request).faults = FaultPlan(config)
    return config


@router.delete("/_faults", response_model=Cleared)
async def clear_faults(request: Request) -> Cleared:
    state_of(request).faults = None
    return Cleared()


@router.get("/_callbacks", response_model=list[CallbackEntry])
async def list_callbacks(request: Request) -> list[CallbackEntry]:
    """The status callbacks posted so far, with the receiver's answer."""
    return state_of(request).callbacks_posted


@router.put("/_callbacks", response_model=CallbackConfig)
async def set_callbacks(config: CallbackConfig, request: Request) -> CallbackConfig:
    """Status callbacks for the Twilio messages accepted from now on."""
    state_of(request).callbacks = CallbackPlan(config)
    return config


@router.delete("/_callbacks", response_model=Cleared)
async def clear_callbacks(request: Request) -> Cleared:
    """Stops the callbacks, those already scheduled included, and forgets the ones posted."""
    state_of(request).stop_callbacks()
    return Cleared()


@router.post("/_inbound", response_model=InboundAnswer, responses={502: {"description": "the ledger did not answer"}})
async def post_inbound(inbound: InboundRequest, request: Request) -> InboundAnswer:
    """Signs the payload as the provider of `kind` would and posts it to `webhook_url`."""
    try:
        return await send_inbound(state_of(request).http, inbound)
    except httpx.HTTPError as error:
        raise HTTPException(502, f"{inbound.webhook_url} did not answer: {error!r}") from error
