"""The one place where errors become HTTP answers: {"error_code", "message", "details"}."""

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ledger import errors
from ledger.errors import LedgerError
from projections.runner import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)


class PayloadTooLarge(LedgerError):
    pass


class ProjectionLagging(LedgerError):
    pass


STATUS_AND_CODE: dict[type[LedgerError], tuple[int, str]] = {
    errors.InvalidJson: (400, "invalid_json"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.InvalidSignature: (401, "invalid_signature"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Contended: (503, "unavailable"),
    errors.Unavailable: (503, "unavailable"),
    PayloadTooLarge: (413, "payload_too_large"),
    errors.UnsupportedMediaType: (415, "unsupported_media_type"),
    errors.ValidationFailed: (422, "validation_error"),
    ProjectionLagging: (503, "projection_lagging"),
}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CODE_OF_HTTP_STATUS = {
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class OrjsonResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(status: int, code: str, message: str, details: object = None) -> OrjsonResponse:
    return OrjsonResponse({"error_code": code, "message": message, "details": details}, status_code=status)


def ledger_error(request: Request, error: LedgerError) -> OrjsonResponse:
    status, code = next(
        (pair for error_class, pair in STATUS_AND_CODE.items() if isinstance(error, error_class)),
        (500, "internal_error"),
    )
    response = error_response(status, code, error.message, error.details)
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def request_validation_error(request: Request, error: RequestValidationError) -> OrjsonResponse:
    problems = error.errors()
    if any(problem["type"] == "json_invalid" for problem in problems):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    details = [
        {"field": _field_name(problem["loc"]), "issue": problem["type"], "message": problem["msg"]}
        for problem in problems
    ]
    return error_response(422, "validation_error", "the request is not valid", details)


def http_error(request: Request, error: StarletteHTTPException) -> OrjsonResponse:
    code = CODE_OF_HTTP_STATUS.get(error.status_code, "error")
    if error.status_code == 405:
        allowed = allowed_methods(request)
        message = f"{request.method} is not allowed on {request.url.path}; it takes {allowed}"
        response = error_response(405, code, message, {"allowed_methods": allowed.split(", ")})
        response.headers["Allow"] = allowed
        return response
    response = error_response(error.status_code, code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


def allowed_methods(request: Request) -> str:
    """Every method routed at the path. Starlette's 405 names only those of the first route that
    matched the path, and a path may have several (GET and POST /v1/users)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


def _field_name(location: tuple) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def database_unavailable(request: Request, error: Exception) -> OrjsonResponse:
    log.warning("PostgreSQL unavailable: %s", error)
    response = error_response(503, "unavailable", "the database is unavailable; retry later")
    response.headers["Retry-After"] = "1"
    return response


def internal_error(request: Request, error: Exception) -> OrjsonResponse:
    """A bug: logged with its traceback, answered in the error format without one."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal_error", "an internal error occurred; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(LedgerError, ledger_error)
    for error_class in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_class, database_unavailable)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
