"""Mock messaging providers for development and tests.

One process serves the APIs the delivery adapters call (Twilio, SendGrid, Slack incoming
webhooks, and the JSON `sms` / `email` / `whatsapp` providers), answers each with the provider's
own success shape, remembers every request, honours `Idempotency-Key`, injects faults on demand,
posts Twilio status callbacks and sends signed inbound webhooks. Run it with
`ledger mock-providers`, or beside the API with `ledger up --mock-providers`.
"""
