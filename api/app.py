"""The HTTP way in."""

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import inbox_stream
from api.console import install_console
from api.dialects import include_dialects
from api.errors import OrjsonResponse, install_error_handlers
from api.limits import BodyLimit
from api.metrics import RequestMetrics
from api.metrics import router as metrics_router
from api.routes import assistance, audit, contacts, handling, health, inbox, reads, sends, tenants, webhooks
from api.runtime import Runtime

DESCRIPTION = """An event-sourced, multi-tenant omnichannel messaging ledger.

**Authorize** with `Bearer <key>`: the operator token (printed by `ledger up`) creates companies
(`POST /v1/companies`); the `api_key` it answers is the company admin's key, for everything else.
Every error is `{"error_code", "message", "details"}`. Webhooks authenticate by the channel's signature."""


def create_app(runtime: Runtime) -> FastAPI:
    # /docs and /redoc load their scripts and styles from this app (a package ships them), not from a CDN.
    app = FastAPIOffline(
        title="Messaging ledger",
        version="0.1.0",
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=inbox_stream.lifespan,
        swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        static_url="/docs-assets",
    )
    app.openapi_version = "3.2.0"  # FastAPI describes the inbox's event stream with 3.2's itemSchema
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (health, tenants, webhooks, sends, handling, reads, contacts, inbox, audit, assistance):
        app.include_router(module.router)
    app.include_router(metrics_router)
    include_dialects(app)
    install_console(app)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=runtime.metrics)  # outermost: it sees 413s too
    return app
