"""The rules settings must keep beyond their types: formats, ranges, what a
deployment cannot run without, and what each configured transport requires."""

from email.utils import parseaddr
from urllib.parse import urlsplit

from domain.addresses import normalize_address
from domain.apps import link_path_problem
from domain.errors import ConfigError
from workers.transports.registry import BACKENDS, choices

#: Shortest token secret accepted outside the embedded default, in characters.
MIN_TOKEN_SECRET_LENGTH = 32
#: Longest retention a setting may ask for, in days (a century: beyond it, say 0).
MAX_RETENTION_DAYS = 36_500


def check(s) -> None:
    """Raise ``ConfigError`` for the first setting that is wrong, alone or with others."""
    if s.database_url and not s.database_url.startswith(
        ("postgres://", "postgresql://", "postgresql+psycopg://", "sqlite://")
    ):
        raise ConfigError("DATABASE_URL", "must be a postgresql:// or sqlite:/// URL")
    schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
    if s.redis_url and not s.redis_url.startswith(schemes):
        raise ConfigError(
            "REDIS_URL", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL"
        )
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
    for setting, path in (
        ("MAILROOM_LINK_PATH_SIGNUP", s.link_path_signup),
        ("MAILROOM_LINK_PATH_LOGIN", s.link_path_login),
        ("MAILROOM_LINK_PATH_EMAIL_CHANGE", s.link_path_email_change),
        ("MAILROOM_LINK_PATH_PASSWORD_RESET", s.link_path_password_reset),
        ("MAILROOM_LINK_PATH_INVITE", s.link_path_invite),
    ):
        if problem := link_path_problem(path):
            raise ConfigError(setting, problem)
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
        ("MAILROOM_REPLAY_CODE_MAX_AGE", s.replay_code_max_age, 1, 7 * 24 * 60),
        ("MAILROOM_REPLAY_NOTICE_MAX_AGE", s.replay_notice_max_age, 1, 30 * 24),
        ("MAILROOM_RETAIN_EMAILS_DAYS", s.retain_emails_days, 0, MAX_RETENTION_DAYS),
        ("MAILROOM_RETAIN_EVENTS_DAYS", s.retain_events_days, 0, MAX_RETENTION_DAYS),
        ("MAILROOM_RETAIN_CHALLENGES_DAYS", s.retain_challenges_days, 0, MAX_RETENTION_DAYS),
        ("MAILROOM_RETAIN_DEAD_LETTERS_DAYS", s.retain_dead_letters_days, 0, MAX_RETENTION_DAYS),
    ):
        if not low <= value <= high:
            raise ConfigError(setting, f"must be between {low} and {high}")
    for key_id, secret in parse_old_secrets(s.token_old_secrets):
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


def _check_transports(s) -> None:
    """Known names, each at most once; then what each backend requires and checks."""
    names = s.transports
    if any(name not in BACKENDS for name in names) or len(set(names)) != len(names):
        raise ConfigError(
            "MAILROOM_TRANSPORT", f"must list {choices()}, each at most once (e.g. `ses,smtp`)"
        )
    values = {f.validation_alias: getattr(s, name) for name, f in type(s).model_fields.items()}
    for transport in names:
        for setting in BACKENDS[transport].REQUIRED:
            if not values[setting]:
                raise ConfigError(setting, f"is required when MAILROOM_TRANSPORT uses {transport}")
    for transport in names:
        BACKENDS[transport].check(s)


def parse_old_secrets(value: str | None) -> list[tuple[str, str]]:
    if not value:
        return []
    pairs = []
    for entry in value.split(","):
        key_id, _, secret = entry.strip().partition("=")
        pairs.append((key_id.strip(), secret.strip()))
    return pairs
