"""How the API answers a failed call: always ``{"error": code, "detail": ...}``.

Clients branch on ``error`` alone, so every failure, the framework's own 404 and
405 and a crash included, must come in that one shape.  An outage of PostgreSQL
or Redis is ``503 unavailable`` with ``Retry-After`` (retrying helps); anything
else unexpected is ``500 internal`` (retrying does not: it is a bug to fix).
"""

from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis import exceptions as redis_errors
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import VerificationFailed
from domain.vocabulary import Verdict
from workers.api_metrics import route_of
from workers.logs import get_logger

log = get_logger("workers.api")

#: The API's own error codes, beside the verification verdicts.
API_ERRORS = (
    "unauthorized", "forbidden", "bad_request", "not_found", "method_not_allowed", "unavailable",
    "internal",
)  # fmt: skip
#: Every ``error`` the API answers: each verdict but ``ok``, and its own.
ErrorCode = Literal[tuple(v.value for v in Verdict if v != Verdict.OK) + API_ERRORS]
#: Seconds a client should wait before retrying a call that met an outage.
RETRY_AFTER = 5
#: The codes of the framework's HTTP errors; other 4xx are the client's fault too.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

#: Failures that mean PostgreSQL is down, unreachable, overloaded or failing over:
#: worth a retry.  A constraint or SQL error (``IntegrityError``...) is a bug: 500.
_DATABASE_OUTAGES = (
    db_errors.OperationalError,  # refused, timed out, statement timeout, deadlock
    db_errors.InterfaceError,  # the connection is closed or broken
    db_errors.DisconnectionError,
    db_errors.TimeoutError,  # no connection free in the pool in time
)
_REDIS_OUTAGES = (
    redis_errors.ConnectionError,  # refused, reset, still loading, bad credentials
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica, mid-failover
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)


class Error(BaseModel):
    error: ErrorCode
    detail: str | None = None


class Unauthorized(Exception):
    pass


#: How an answer's ``Retry-After`` header is documented.
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before a retry.", "schema": {"type": "integer"}}
}


def error(status: int, code: str, detail: str | None = None, headers=None) -> JSONResponse:
    body = {"error": code} if detail is None else {"error": code, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def unavailable(detail: str) -> JSONResponse:
    return error(503, "unavailable", detail, {"Retry-After": str(RETRY_AFTER)})


def outage(exc: BaseException) -> str | None:
    """Which dependency ``exc`` says is out ("database", "redis"), or None for a bug."""
    if isinstance(exc, _DATABASE_OUTAGES):
        return "database"
    if isinstance(exc, db_errors.DBAPIError) and exc.connection_invalidated:
        return "database"
    if isinstance(exc, _REDIS_OUTAGES):
        return "redis"
    return None


def reason(exc: BaseException) -> str:
    """The driver's own words, first line: a DBAPIError's full text quotes the SQL
    statement and its parameters, which are not the log's business."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def install(app: FastAPI) -> None:
    """Answer every failure in the API's shape.  Add it before any middleware that
    must see the final status (metrics): middleware added later wraps it."""

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized):
        return error(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(VerificationFailed)
    async def _failed(request: Request, exc: VerificationFailed):
        return error(429 if exc.code == Verdict.RATE_LIMITED else 400, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        # The location and the rule broken, never the input (it may be a secret).
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        return error(422, "bad_request", f"{where}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        code = _HTTP_CODES.get(exc.status_code)
        code = code or ("internal" if exc.status_code >= 500 else "bad_request")
        return error(exc.status_code, code, headers=exc.headers)

    app.add_middleware(ErrorBoundary)


class ErrorBoundary:
    """Turns what no handler took into 503 or 500.

    Starlette's own last resort answers in plain text and re-raises, so uvicorn
    logs the error a second time; this one answers JSON and logs once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            response = self._answer(scope, exc)
            if started:
                raise  # half an answer is out: only the server can end it (by closing)
            await response(scope, receive, send)

    @staticmethod
    def _answer(scope: Scope, exc: Exception) -> JSONResponse:
        where = {"method": scope["method"], "route": route_of(scope)}
        dependency = outage(exc)
        if dependency is not None:
            # No traceback: an outage repeats the same one on every call.
            log.warning(
                "api.unavailable",
                dependency=dependency,
                error=type(exc).__name__,
                reason=reason(exc),
                **where,
            )
            return unavailable(dependency)
        # The request's body is never logged: it carries codes and tokens.
        log.exception("api.internal_error", **where)
        return error(500, "internal")
