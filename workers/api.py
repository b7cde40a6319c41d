"""The verification API over HTTP JSON (``mailroom serve``).

Every call carries an app's key as ``Authorization: Bearer mrk_...``; the key
decides which app's challenges the call can see.  Secrets travel in request
bodies only, never in a URL (URLs end up in access logs).
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from domain.tokens import api_key_digest
from domain.vocabulary import CODE_PURPOSES, Purpose
from workers import api_docs, api_emails, api_errors, api_events, api_metrics, api_probes, api_ses
from workers.api_errors import RETRY_AFTER_HEADER, Error, Unauthorized
from workers.runtime import Runtime
from workers.store import apikeys
from workers.verification import Verifier

#: The purposes whose mail carries a code, as the API's schema shows them.
CodePurpose = Literal[tuple(p.value for p in CODE_PURPOSES)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifyCode(_Body):
    purpose: CodePurpose
    email: str = Field(max_length=254, description="The address the code was mailed to.")
    code: str = Field(max_length=16, description="What the user typed.")


class TokenRequest(_Body):
    purpose: Purpose
    token: str = Field(max_length=128, description="The `token` query parameter of the link.")


class RevokeUser(_Body):
    purpose: Purpose | None = Field(None, description="Only this purpose; default: all.")


class Invite(BaseModel):
    invite_id: str
    workspace_id: str
    workspace_name: str
    role: str
    inviter_name: str
    existing_user: bool


class Verified(BaseModel):
    challenge_id: str
    purpose: Purpose
    user_id: str | None
    email: str = Field(description="The address the code or link was mailed to.")
    old_email: str | None = Field(description="Email change only: the address replaced.")
    new_email: str | None = Field(description="Email change only: the address confirmed.")
    invite: Invite | None = Field(description="Invite only: what the invitation grants.")
    expires_at: datetime | None = Field(description="Peek only: when the link stops working.")


class Revoked(BaseModel):
    revoked: int = Field(description="Live challenges revoked by this call.")


#: What any call may answer besides its own failures.
COMMON_FAILURES = {
    401: {"model": Error, "description": "Missing, unknown or revoked API key."},
    422: {"model": Error, "description": "The request body is malformed (`bad_request`)."},
    500: {"model": Error, "description": "A bug (`internal`): retrying will not help."},
    503: {
        "model": Error,
        "description": "PostgreSQL or Redis is out (`unavailable`, `detail`: which): "
        "retry after `Retry-After` seconds.",
        "headers": RETRY_AFTER_HEADER,
    },
}
FAILURES = {
    400: {"model": Error, "description": "`invalid`, `expired` or `locked`."},
    429: {"model": Error, "description": "Too many wrong codes for this address: wait."},
    **COMMON_FAILURES,
}


def create_app(runtime: Runtime) -> FastAPI:
    verifier = Verifier(runtime)
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI(
        title="mailroom verification API",
        version="1",
        description="Check what a user typed or clicked. Authenticate with an app's API key "
        "(`mailroom apikey create APP`) as a Bearer token. Every failure answers "
        '`{"error": code, "detail": ...}`.',
        docs_url=None,  # api_docs serves it, from local files
        redoc_url=None,  # it would load from a CDN
    )
    api_errors.install(app)

    def calling_app(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized()
        app_id = runtime.apps.app_for_key(api_key_digest(credentials.credentials))
        if app_id is None:
            with runtime.engine.connect() as conn:
                app_id = apikeys.app_for(conn, credentials.credentials)
        if app_id is None:
            raise Unauthorized()
        return app_id

    App = Annotated[str, Depends(calling_app)]

    @app.post("/v1/codes/verify", response_model=Verified, responses=FAILURES)
    def verify_code(body: VerifyCode, app_id: App) -> dict:
        """Check a code the user typed. On success the challenge is used up."""
        return verifier.verify_code(app_id, body.purpose, body.email, body.code).as_dict()

    @app.post("/v1/tokens/consume", response_model=Verified, responses=FAILURES)
    def consume_token(body: TokenRequest, app_id: App) -> dict:
        """Use a link token, once. Consuming a reset token revokes the user's other ones."""
        return verifier.consume_token(app_id, body.purpose, body.token).as_dict()

    @app.post("/v1/tokens/peek", response_model=Verified, responses=FAILURES)
    def peek_token(body: TokenRequest, app_id: App) -> dict:
        """What a link token is for, without using it: for the page the link opens,
        which a mail scanner may fetch before the user does."""
        return verifier.peek_token(app_id, body.purpose, body.token).as_dict()

    @app.post(
        "/v1/challenges/{challenge_id}/revoke", response_model=Revoked, responses=COMMON_FAILURES
    )
    def revoke_challenge(challenge_id: str, app_id: App) -> dict:
        """Revoke one challenge (idempotent: 0 when it was not live)."""
        return {"revoked": verifier.revoke_challenge(app_id, challenge_id)}

    @app.post("/v1/users/{user_id}/revoke", response_model=Revoked, responses=COMMON_FAILURES)
    def revoke_user(user_id: str, app_id: App, body: RevokeUser | None = None) -> dict:
        """Revoke all of a user's live challenges (of one purpose, if given)."""
        purpose = body.purpose if body else None
        return {"revoked": verifier.revoke_user(app_id, user_id, purpose)}

    app.include_router(api_emails.router(runtime, calling_app), responses=COMMON_FAILURES)
    app.include_router(api_events.router(runtime, calling_app), responses=COMMON_FAILURES)
    api_ses.install(app, runtime)  # no API key: SNS signs instead
    api_probes.install(app, runtime)
    api_docs.install(app)
    # After the error handling: its middleware then wraps that one's, and counts
    # the status the client got.
    api_metrics.install(app)
    return app
