"""Settings as an operator is shown them (``mailroom config show``): every value in
force, where it came from, secrets masked."""

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from workers.settings import Settings

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
