"""Assistance requests: each with its topic, where it was routed, its status (queued until its send
settles, then sent or failed) and every attempt, as GET /v1/messages/{id} lists a message's."""

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.assistance import AssistanceRequest
from projections import Projection
from projections.timeline import settle_attempt

PROJECTION = Projection(
    "assistance",
    ddl=[
        """create table if not exists assistance_requests (
            id uuid primary key,
            company_id uuid not null,
            topic text not null,
            description text not null,
            channel_id uuid not null,
            recipient text not null,
            conversation_id uuid,
            requested_by text not null,
            status text not null,
            attempts jsonb not null default '[]',
            failure_reason text,
            provider_message_id text,
            created_at timestamptz not null,
            updated_at timestamptz not null,
            sent_at timestamptz
        )""",
    ],
    tables=["assistance_requests"],
)
MUTABLE = ("status", "attempts", "failure_reason", "provider_message_id", "updated_at", "sent_at")


@PROJECTION.on(AssistanceRequest.Requested)
def requested(cursor, event: AssistanceRequest.Requested, position: int) -> None:
    cursor.execute(
        """insert into assistance_requests (id, company_id, topic, description, channel_id, recipient, conversation_id,
               requested_by, status, created_at, updated_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, 'queued', %s, %s)""",
        [
            event.originator_id,
            event.company_id,
            event.topic,
            event.description,
            event.channel_id,
            event.to,
            event.conversation_id,
            event.actor,
            event.recorded_at,
            event.recorded_at,
        ],
    )


@PROJECTION.on(AssistanceRequest.AttemptStarted)
def attempt_started(cursor, event: AssistanceRequest.AttemptStarted, position: int) -> None:
    def change(request: dict) -> None:
        request["attempts"].append(
            {
                "n": event.attempt,
                "started_at": event.recorded_at.isoformat(),
                "outcome": None,
                "http_status": None,
                "reason": None,
                "next_attempt_at": None,
            }
        )

    update_request(cursor, event, change)


@PROJECTION.on(AssistanceRequest.AttemptFailed)
def attempt_failed(cursor, event: AssistanceRequest.AttemptFailed, position: int) -> None:
    def change(request: dict) -> None:
        settle_attempt(request, event.attempt, "retry", event.http_status, event.reason, event.next_attempt_at)

    update_request(cursor, event, change)


@PROJECTION.on(AssistanceRequest.Sent)
def sent(cursor, event: AssistanceRequest.Sent, position: int) -> None:
    def change(request: dict) -> None:
        settle_attempt(request, event.attempt, "sent", event.http_status, None, None)
        request.update(status="sent", provider_message_id=event.provider_message_id, sent_at=event.recorded_at)

    update_request(cursor, event, change)


@PROJECTION.on(AssistanceRequest.Failed)
def failed(cursor, event: AssistanceRequest.Failed, position: int) -> None:
    def change(request: dict) -> None:
        settle_attempt(request, event.attempt, "failed", event.http_status, event.reason, None)
        request.update(status="failed", failure_reason=event.reason)

    update_request(cursor, event, change)


def update_request(cursor, event, change) -> None:
    row = cursor.execute(
        f"select {', '.join(MUTABLE)} from assistance_requests where id = %s for update", [event.originator_id]
    ).fetchone()
    request = dict(zip(MUTABLE, row, strict=True))
    change(request)
    request["updated_at"] = event.recorded_at
    cursor.execute(
        f"update assistance_requests set {', '.join(f'{name} = %s' for name in MUTABLE)} where id = %s",
        [*(Jsonb(request[name]) if name == "attempts" else request[name] for name in MUTABLE), event.originator_id],
    )


def get_request(conn: Connection, company_id: str, request_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            """select id, topic, description, channel_id, recipient as "to", conversation_id, requested_by, status,
                      attempts, failure_reason, provider_message_id, created_at, updated_at, sent_at
               from assistance_requests where company_id = %s and id = %s""",
            [company_id, request_id],
        ).fetchone()
