"""Structured logging: structlog for our lines, the same renderer for Dramatiq's.

No code, token, link, password or credential is ever passed to a logger; the
``_redact`` processor is a second line of defence should one slip in by name, and
``_mask_addresses`` a third for any text (a library's message, its arguments, a
rendered traceback): addresses masked, codes and link tokens replaced.
Tracebacks are plain (never with local variables).
"""

import logging
import re
import sys

import structlog

from domain.addresses import mask_address

#: Libraries whose DEBUG output would carry secrets or personal data.
QUIET_LOGGERS = (
    "dramatiq", "workers.actors", "botocore", "boto3", "urllib3", "google", "redis", "httpx",
    "httpcore",
)  # fmt: skip

#: Event keys whose values are never printed.
SECRET_KEYS = frozenset({"code", "token", "link", "password", "secret", "authorization"})


def _redact(_logger, _method, event_dict):
    for key in SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


#: Event keys whose values look like addresses but name no person: a
#: Message-ID is ``<email-id.mailroom@sender-domain>``, and the operator
#: searches a relay's logs for it whole.
UNMASKED_KEYS = frozenset({"message_id"})

#: Something shaped like an address, inside any text.
#: (A local part stops at a URL's separators: ``/users/ada@x.org``, ``?to=ada@x.org``.)
_ADDRESS = re.compile(r"[^\s@'\"<>(),;:\[\]/?&=]+@[^\s@'\"<>(),;:\[\]]+\.[^\s@'\"<>(),;:\[\]]+")
#: A link's secret: the value of its ``token`` (or ``code``) query parameter.
_LINK_SECRET = re.compile(r"([?&;](?:token|code)=)[^&;#\s'\"<>]+", re.IGNORECASE)
#: A verification code (6 to 8 digits) soon after the word "code": "code 123456",
#: "code: 123456", "code is 123456".
_CODE = re.compile(r"(\bcode\b\D{0,16}?)\b\d{6,8}\b", re.IGNORECASE)


def _masked(text: str) -> str:
    if "%40" in text:  # an address in a URL (an access log's path)
        text = text.replace("%40", "@")
    if "@" in text:
        text = _ADDRESS.sub(lambda m: mask_address(m.group()), text)
    text = _LINK_SECRET.sub(r"\1[redacted]", text)
    return _CODE.sub(r"\1[redacted]", text)


def _mask_addresses(_logger, _method, event_dict):
    """Addresses are masked in every line, ours and the libraries' alike (an SMTP
    reply may quote the recipient, Dramatiq quotes a failed message's arguments),
    and so is what looks like a code or a link's token, should one be quoted.

    It runs on the rendered exception too, so it comes after ``format_exc_info``.
    """
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in UNMASKED_KEYS:
            event_dict[key] = _masked(value)
    return event_dict


def configure_logging(fmt: str | None = None, level: str = "INFO", stream=None) -> None:
    stream = stream or sys.stdout
    fmt = fmt or ("console" if stream.isatty() else "json")
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        # The console renderer prints an ``exception`` already rendered as is: a
        # traceback it formatted itself would escape the masking.
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    final = [structlog.processors.format_exc_info, _mask_addresses, renderer]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, numeric))
    # At DEBUG these print what passes through them: Dramatiq every message's
    # arguments (whole events, unmasked addresses), botocore and urllib3 whole
    # requests (a raw mail, with its code), google-auth token responses.  They
    # never go below INFO, whatever LOG_LEVEL says.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, numeric))


def get_logger(name: str = "mailroom"):
    return structlog.get_logger(name)
