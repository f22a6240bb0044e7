"""The HTTP way in."""

from fastapi import FastAPI

from api import inbox_stream
from api.errors import OrjsonResponse, install_error_handlers
from api.limits import BodyLimit
from api.metrics import RequestMetrics
from api.metrics import router as metrics_router
from api.routes import audit, contacts, handling, health, inbox, reads, sends, tenants, webhooks
from api.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Messaging ledger",
        version="0.1.0",
        description="An event-sourced, multi-tenant omnichannel messaging ledger.",
        default_response_class=OrjsonResponse,
        lifespan=inbox_stream.lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (health, tenants, webhooks, sends, handling, reads, contacts, inbox, audit):
        app.include_router(module.router)
    app.include_router(metrics_router)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=runtime.metrics)  # outermost: it sees 413s too
    return app
