"""Auditing figures: the history of one 10,000-event conversation (from the log, chain checked),
and `ledger verify`'s rate over the whole log.

    uv run python -m benchmarks.audit --events 10000

Uses DATABASE_URL / REDIS_URL's servers (default: the local ones), in a fresh database.
"""

import argparse
import statistics
import time
import uuid

from api.runtime import build_runtime
from benchmarks.common import deployment
from ledger.contacts import Contact
from ledger.messaging import Conversation
from ledger.tenants import Principal

BATCH = 500  # events appended per commit while building the conversation


def build_conversation(ledger, company, events: int) -> uuid.UUID:
    contact = Contact.create(company.company_id, "+18045551234", "phone", "system")
    conversation = Conversation.start(
        company.company_id,
        str(uuid.uuid4()),
        str(contact.id),
        "+18045551234",
        "+18045550100",
        company.bot_user_id,
        "system",
    )
    ledger.commit(contact, conversation)
    for start in range(1, events, BATCH):
        conversation = ledger.repository.get(conversation.id)
        for n in range(start, min(start + BATCH, events)):
            conversation.receive_inbound(
                uuid.uuid4(), f"p-{n}", "sms", f"message {n}", f"message {n}", [], None, "system"
            )
        ledger.commit(conversation)
    return conversation.id


def main() -> None:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--events", type=int, default=10_000)
    count = arguments.parse_args().events
    with deployment() as (env, settings):
        runtime = build_runtime(settings)
        try:
            created = runtime.ledger.create_company("Bench")
            company = created.company
            conversation_id = build_conversation(runtime.ledger, company, count)
            auditor = Principal(company.company_id, company.admin_user_id, "admin")
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                history = runtime.ledger.history(auditor, conversation_id)
                timings.append(time.perf_counter() - started)
            assert history.verified and len(history.events) == count
            print(
                f"history of a {count}-event conversation: median {statistics.median(timings) * 1000:.0f} ms "
                f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}; 5 runs, chain checked)"
            )
            started = time.perf_counter()
            events = sum(n for _, n, check in runtime.ledger.verify_all() if check.verified)
            elapsed = time.perf_counter() - started
            print(f"verify: {events} events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s")
        finally:
            runtime.close()


if __name__ == "__main__":
    main()
