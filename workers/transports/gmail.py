"""The ``gmail`` transport: SMTP with XOAUTH2, the access token from google-auth.

google-auth refreshes the access token shortly before it expires; one token is
cached per process.  A refresh token Google refuses (``invalid_grant``: revoked
or expired) is a configuration error naming MAILROOM_GMAIL_REFRESH_TOKEN.

Gmail rewrites the From address to the authenticated account unless the
address is one of its verified "Send mail as" aliases.

google-auth is imported when a transport is built, not with this module: the
settings check reads NAME, REQUIRED and ``check`` here, and google-auth (with
requests) takes ~50 ms to import.
"""

import smtplib
import threading

from domain.errors import TransientError, TransportConfigError
from workers.transports.smtp import SMTPTransport, check_ca_file, helo_name

NAME = "gmail"

REQUIRED = (
    "MAILROOM_GMAIL_USER",
    "MAILROOM_GMAIL_CLIENT_ID",
    "MAILROOM_GMAIL_CLIENT_SECRET",
    "MAILROOM_GMAIL_REFRESH_TOKEN",
)

HINT = "check MAILROOM_GMAIL_SMTP_HOST, the network, and MAILROOM_GMAIL_TOKEN_URI"

#: The scope a refresh token needs to send mail over SMTP.
SCOPE = "https://mail.google.com/"


class AccessToken:
    """A cached OAuth2 access token, refreshed by google-auth when due."""

    def __init__(self, *, client_id, client_secret, refresh_token, token_uri) -> None:
        import google.auth.transport.requests
        from google.oauth2.credentials import Credentials

        self.credentials = Credentials(
            token=None,
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
            token_uri=token_uri,
            scopes=[SCOPE],
        )
        self.request = google.auth.transport.requests.Request()
        self.lock = threading.Lock()

    def __call__(self, *, force: bool = False) -> str:
        import google.auth.exceptions

        with self.lock:
            if force or not self.credentials.valid:
                try:
                    self.credentials.refresh(self.request)
                except google.auth.exceptions.RefreshError as exc:
                    if "invalid_grant" in str(exc):
                        raise TransportConfigError(
                            "MAILROOM_GMAIL_REFRESH_TOKEN",
                            "Google refused the refresh token (invalid_grant: revoked or "
                            "expired); create a new one",
                        ) from exc
                    if "invalid_client" in str(exc) or "unauthorized_client" in str(exc):
                        raise TransportConfigError(
                            "MAILROOM_GMAIL_CLIENT_SECRET", f"Google refused the client: {exc}"
                        ) from exc
                    raise TransientError(f"Google token refresh failed: {exc}") from exc
                except google.auth.exceptions.TransportError as exc:
                    raise TransientError(f"Google token endpoint unreachable: {exc}") from exc
            return self.credentials.token


def xoauth2_login(user: str, token: AccessToken):
    def login(client: smtplib.SMTP, retry: bool) -> None:
        bearer = token(force=retry)
        client.auth(
            "XOAUTH2",
            lambda challenge=None: f"user={user}\x01auth=Bearer {bearer}\x01\x01",
            initial_response_ok=True,
        )

    return login


def check(settings) -> None:
    check_ca_file(settings)  # the TLS to Gmail's SMTP trusts it as well


def from_settings(settings) -> SMTPTransport:
    token = AccessToken(
        client_id=settings.gmail_client_id,
        client_secret=settings.gmail_client_secret,
        refresh_token=settings.gmail_refresh_token,
        token_uri=settings.gmail_token_uri,
    )
    transport = SMTPTransport(
        settings.gmail_smtp_host,
        settings.gmail_smtp_port,
        security="starttls",
        login=xoauth2_login(settings.gmail_user, token),
        timeout=settings.smtp_timeout,
        ca_file=settings.smtp_ca_file,
        helo_name=helo_name(settings),
        name=NAME,
        credential_setting="MAILROOM_GMAIL_REFRESH_TOKEN",
    )
    transport.token = token
    return transport
