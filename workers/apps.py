"""Loading the apps directory: a TOML file (MAILROOM_APPS_FILE), or one app from
the environment settings.

    default = "notes"            # optional: serves sources not listed below

    [apps.notes]
    product_name = "Notes"
    from = "Notes <no-reply@notes.example.com>"
    public_base_url = "https://notes.example.com"
    support_email = "help@notes.example.com"
    logo_url = "https://notes.example.com/logo.png"
    default_locale = "en"
    api_key_sha256 = ["<hex>"]  # `mailroom apikey create notes --no-store`

    [apps.notes.links]           # optional, per purpose: where its link lands
    signup = "/auth/verify"
    password_reset = "/account?step=reset"

    [apps.notes.dkim]            # optional: DKIM keys (see workers/dkim_config.py)
    key_file = "dkim/notes.pem"

    # optional, in [apps.notes]: its outcomes POSTed, signed (domain/webhooks.py)
    webhook_url = "https://notes.example.com/hooks/mailroom"
    webhook_secret_env = "NOTES_WEBHOOK_SECRET"   # or webhook_secret = "whsec_..."
    webhook_events = ["bounced", "complained"]    # default: every status

An app leaves out what the environment settings give (MAILROOM_MAIL_FROM,
MAILROOM_PUBLIC_BASE_URL, MAILROOM_SUPPORT_EMAIL, MAILROOM_LINK_PATH_*...).
"""

import os
import re
import tomllib
from email.utils import parseaddr
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.addresses import normalize_address
from domain.apps import APP_ID_RULE, App, Directory, is_app_id, link_path_problem
from domain.errors import ConfigError
from domain.vocabulary import Purpose
from domain.webhooks import Webhook, decode_secret, events_problem, url_problem
from workers.dkim_config import DkimEntry, dkim_for

SETTING = "MAILROOM_APPS_FILE"
#: The sender in the embedded mode when neither the settings nor the app name one.
EMBEDDED_SENDER = "Mailroom <no-reply@example.com>"


class _Links(BaseModel):
    """Per purpose, where its link lands below the app's base URL."""

    model_config = ConfigDict(extra="forbid")

    signup: str | None = None
    login: str | None = None
    email_change: str | None = None
    password_reset: str | None = None
    invite: str | None = None

    @field_validator("*")
    @classmethod
    def _path(cls, value):
        if value is not None and (problem := link_path_problem(value)):
            raise ValueError(problem)
        return value

    def given(self) -> dict[Purpose, str]:
        return {Purpose(name): path for name, path in self.model_dump().items() if path}


class _AppEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    product_name: str | None = Field(None, max_length=100)
    sender: str | None = Field(None, alias="from")
    public_base_url: str | None = None
    support_email: str | None = None
    logo_url: str | None = None
    default_locale: str | None = Field(None, max_length=35)
    api_key_sha256: list[str] = []
    links: _Links = _Links()
    # --- DKIM (workers/dkim_config.py) ---
    dkim: DkimEntry | None = None
    # --- webhooks (domain/webhooks.py) ---
    webhook_url: str | None = None
    webhook_secret: str | None = Field(None, repr=False)
    #: The environment variable holding the secret, so the file need not.
    webhook_secret_env: str | None = None
    webhook_events: list[str] | None = None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value):
        if value is not None and (problem := url_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value):
        if value is not None:
            decode_secret(value)  # its ValueError never quotes the value
        return value

    @field_validator("webhook_events")
    @classmethod
    def _webhook_events(cls, values):
        if values is not None and (problem := events_problem(values)):
            raise ValueError(problem)
        return values

    @field_validator("api_key_sha256")
    @classmethod
    def _hex(cls, values):
        for value in values:
            if not re.fullmatch(r"[0-9a-f]{64}", value):
                raise ValueError("each entry is a SHA-256 in lower-case hex (64 characters)")
        return values

    @field_validator("public_base_url", "logo_url")
    @classmethod
    def _url(cls, value):
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value):
        # Links append a path and a query to it: its own would end up in the middle.
        if value is not None and (urlsplit(value).query or "#" in value):
            raise ValueError("must have no query or fragment (links are built on it)")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    apps: dict[str, _AppEntry]


def setting_link_paths(settings) -> dict[Purpose, str]:
    """Where each purpose's link lands by the settings (MAILROOM_LINK_PATH_*)."""
    return {purpose: getattr(settings, f"link_path_{purpose}") for purpose in Purpose}


def _app(app_id: str, entry: _AppEntry, settings, read_keys: bool = True) -> App:
    sender = entry.sender or settings.mail_from
    base_url = entry.public_base_url or settings.public_base_url
    if settings.embedded:
        sender = sender or EMBEDDED_SENDER
        base_url = base_url or settings.base_url
    where = f"apps.{app_id}"
    if not sender:
        raise ConfigError(SETTING, f"{where}.from is required (or set MAILROOM_MAIL_FROM)")
    if not base_url:
        raise ConfigError(
            SETTING, f"{where}.public_base_url is required (or set MAILROOM_PUBLIC_BASE_URL)"
        )
    name, address = parseaddr(sender)
    support = entry.support_email or settings.support_email
    try:
        address = normalize_address(address)
        support = normalize_address(support) if support else None
    except ValueError as exc:
        raise ConfigError(SETTING, f"{where}: {exc}") from None
    return App(
        id=app_id,
        product_name=entry.product_name or settings.product_name,
        from_address=address,
        from_name=name or None,
        base_url=base_url,
        support_email=support,
        logo_url=entry.logo_url or settings.logo_url,
        default_locale=entry.default_locale or settings.default_locale,
        api_key_hashes=frozenset(entry.api_key_sha256),
        link_paths={**setting_link_paths(settings), **entry.links.given()},
        # --- DKIM ---
        dkim=_dkim(where, entry, address, settings, read_keys),
        # --- webhooks ---
        webhook=_webhook(where, entry),
    )


def _dkim(where: str, entry: _AppEntry, sender: str, settings, read_keys: bool):
    beside = settings.apps_file.parent if settings.apps_file is not None else None
    return dkim_for(where, entry.dkim, sender, beside, read_keys=read_keys)


def _webhook(where: str, entry: _AppEntry) -> Webhook | None:
    secret, variable = entry.webhook_secret, entry.webhook_secret_env
    if entry.webhook_url is None:
        if secret is not None or variable is not None or entry.webhook_events is not None:
            raise ConfigError(SETTING, f"{where}: webhook settings without webhook_url")
        return None
    if (secret is None) == (variable is None):
        raise ConfigError(
            SETTING, f"{where}: webhook_url needs exactly one of webhook_secret, webhook_secret_env"
        )
    if variable is not None:
        secret = os.environ.get(variable, "")
        if not secret:
            raise ConfigError(
                SETTING, f"{where}.webhook_secret_env: environment variable {variable} is not set"
            )
        try:
            decode_secret(secret)
        except ValueError as exc:
            raise ConfigError(SETTING, f"{where}.webhook_secret_env: {variable} {exc}") from None
    events = frozenset(entry.webhook_events) if entry.webhook_events is not None else None
    return Webhook(url=entry.webhook_url, secret=decode_secret(secret), events=events)


def load_directory(settings, *, read_keys: bool = True) -> Directory:
    """``read_keys=False`` leaves DKIM key files unread (``mailroom dkim keygen``
    runs before its key exists)."""
    if settings.apps_file is None:
        # One app for every source, from the environment settings.
        return Directory(default=_app("default", _AppEntry(), settings))
    try:
        raw = tomllib.loads(settings.apps_file.read_text())
        parsed = _File.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(SETTING, f"{settings.apps_file}: {exc}") from None
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(SETTING, f"{where}: {message}") from None
    apps = {}
    for app_id, entry in parsed.apps.items():
        if not is_app_id(app_id):
            raise ConfigError(SETTING, f"apps.{app_id}: {APP_ID_RULE}")
        apps[app_id] = _app(app_id, entry, settings, read_keys)
    if parsed.default is not None and parsed.default not in apps:
        raise ConfigError(SETTING, f"default: {parsed.default!r} is not one of the apps")
    return Directory(apps=apps, default=apps.get(parsed.default) if parsed.default else None)
