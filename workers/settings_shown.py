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
        if shown is None:
            shown, source = _stand_in(settings, env, environ) or (None, source)
        rows.append({"setting": env, "value": shown, "source": source})
    return rows


def _stand_in(settings: Settings, env: str, environ: Mapping[str, str]):
    """For a setting left unset: (the value in force all the same, where it comes
    from), or None if nothing stands in for it.  Never reads the generated secret."""
    from workers.apps import EMBEDDED_SENDER, load_directory
    from workers.embedded import SECRET_FILE, find
    from workers.transports.smtp import helo_name

    embedded = settings.embedded
    if env == "REDIS_URL":
        url = find(settings.state_dir)
        return url, "embedded (mailroom dev)" if url else "embedded: no mailroom dev running"
    if env == "DATABASE_URL":
        return settings.sqlalchemy_url, "default"
    if env == "MAILROOM_SMTP_PORT":
        return str(settings.effective_smtp_port), "default"
    if env == "MAILROOM_SMTP_HELO_NAME" and {"smtp", "gmail"} & set(settings.transports):
        return helo_name(settings), "default (this host)"
    if env == "MAILROOM_SES_REGION":
        region = next((n for n in ("AWS_REGION", "AWS_DEFAULT_REGION") if environ.get(n)), None)
        return (environ[region], region) if region else None
    if env == "MAILROOM_MAIL_FROM" and embedded:
        return EMBEDDED_SENDER, "embedded default"
    if env == "MAILROOM_PUBLIC_BASE_URL" and embedded:
        return settings.base_url, "embedded default"
    if env == "MAILROOM_TOKEN_SECRET" and embedded:
        path = settings.state_dir / SECRET_FILE
        kept = f"**** (kept in {path})" if path.exists() else f"(generated on first use in {path})"
        return kept, "generated"
    if env == "MAILROOM_PRODUCT_NAME":
        if settings.apps_file is not None:
            return None, "each app's product_name, else its sender"
        product = load_directory(settings).default.product()  # from the one app's sender
        return product, "sender" if settings.mail_from else "embedded default"
    if env == "LOG_FORMAT":
        return None, "default: console on a TTY, json otherwise"
    return None
