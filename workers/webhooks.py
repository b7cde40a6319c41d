"""Sending one webhook: each attempt signed anew, retried with exponential back-off,
dead-lettered in ``failed_webhooks`` when every attempt failed.

The actor ``send_webhook`` (``workers.actors``) runs ``attempt`` on its own queue,
so a slow receiver never holds up mail.  It schedules its own next attempt (as
``deliver`` does) rather than raising for Dramatiq to retry: a receiver's 500 is
the expected weather, not an error with a traceback, and the last failure must
be filed here, with its HTTP status.  The secret never leaves the apps file: a
message carries the app id, and each attempt looks its webhook up.
"""

import re
import time
from dataclasses import dataclass

import dramatiq
import requests
from dramatiq.common import compute_backoff

from domain import webhooks
from workers import metrics
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import failed_webhooks

log = get_logger("mailroom.webhooks")

#: The actor's name, as messages in Redis carry it, and its queue.
SEND_WEBHOOK = "send_webhook"
WEBHOOKS_QUEUE = "webhooks"
#: Broker retries of an attempt that failed unexpectedly (Redis or the database
#: down while scheduling or filing it); a receiver's failure is not one.
SEND_MAX_RETRIES = 20
#: What mailroom says it is (receivers' logs show it).
USER_AGENT = "mailroom-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What one POST came to."""

    #: The HTTP status; None: no answer (timeout, connection refused...).
    status: int | None
    #: Why it failed, in words without the URL or the body; None when it was taken.
    error: str | None
    duration: float

    @property
    def taken(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver wants no more of this message."""
        return self.status == 410


def configured(directory) -> bool:
    """Whether any app of the apps file has a webhook."""
    return any(app.webhook for app in directory.apps.values())


def post(url: str, body: str, headers: dict[str, str], timeout: float) -> Answer:
    started = time.monotonic()
    try:
        response = requests.post(
            url,
            data=body.encode(),
            headers={**headers, "user-agent": USER_AGENT},
            timeout=timeout,
            # A redirect is a misconfigured URL: following it would send the
            # outcome somewhere the apps file does not name.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Answer(None, _why(exc), time.monotonic() - started)
    status = response.status_code
    response.close()
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Answer(status, error, time.monotonic() - started)


def _why(exc: requests.RequestException) -> str:
    """The failure in a few words; requests' own text names the URL, which may
    carry a receiver's token."""
    if isinstance(exc, requests.Timeout):
        return f"timeout ({type(exc).__name__})"
    errno = re.search(r"\[Errno -?\d+\][^)'\"]*", str(exc))
    return f"{type(exc).__name__}: {errno.group(0).strip()}" if errno else type(exc).__name__


def enqueue(broker: dramatiq.Broker, app: str, webhook_id: str, body: str, attempt: int = 1,
            delay_ms: int | None = None) -> None:  # fmt: skip
    broker.get_actor(SEND_WEBHOOK).send_with_options(
        args=(app, webhook_id, body, attempt), delay=delay_ms
    )


def backoff_ms(settings, attempt: int) -> int:
    """Milliseconds before the attempt after ``attempt``: Dramatiq's exponential
    back-off (doubling, with jitter) between the webhook bounds: a receiver's
    outage lasts longer than a relay's hiccup, and mail retries must not wait on it."""
    _, delay = compute_backoff(
        attempt - 1,
        factor=int(settings.webhook_min_backoff * 1000),
        max_backoff=int(settings.webhook_max_backoff * 1000),
    )
    return delay


def attempt(rt: Runtime, app_id: str, webhook_id: str, body: str, number: int,
            sender=post) -> Answer | None:  # fmt: skip
    """Attempt ``number`` at one webhook; None when its app has no webhook any more."""
    app = rt.apps.apps.get(app_id) or rt.apps.for_source(app_id)
    hook = app.webhook if app is not None else None
    fields = {"app": app_id, "webhook_id": webhook_id, "attempt": number}
    if hook is None:
        log.warning("webhook.dropped", **fields, why="the app has no webhook_url any more")
        return None
    now = int(time.time())
    answer = sender(hook.url, body, webhooks.headers(hook.secret, webhook_id, now, body),
                    rt.settings.webhook_timeout)  # fmt: skip
    fields.update(status_code=answer.status, duration_ms=round(answer.duration * 1000, 1))
    if answer.taken:
        _count(app_id, "sent")
        log.info("webhook.sent", **fields)
    elif answer.gone:
        _count(app_id, "gone")
        log.warning("webhook.gone", **fields)
    elif number < rt.settings.webhook_attempts:
        delay = backoff_ms(rt.settings, number)
        enqueue(rt.broker, app_id, webhook_id, body, number + 1, delay_ms=delay)
        _count(app_id, "retrying")
        log.warning("webhook.retrying", **fields, error=answer.error, retry_in_ms=delay)
    else:
        dead_letter(rt, app_id, webhook_id, hook.url, body, answer.status, answer.error, number)
        log.error("webhook.dead_lettered", **fields, error=answer.error)
    return answer


def dead_letter(rt: Runtime, app_id: str, webhook_id: str, url: str, body: str,
                status: int | None, error: str | None, attempts: int) -> int:  # fmt: skip
    with rt.engine.begin() as conn:
        failed_id = failed_webhooks.file(
            conn, app=app_id, webhook_id=webhook_id, url=url, payload=body,
            last_status=status, last_error=error or "unknown", attempts=attempts,
            now=rt.clock(),
        )  # fmt: skip
    _count(app_id, "dead_lettered")
    return failed_id


def dead_letter_unsent(rt: Runtime, app_id: str, webhook_id: str, body: str, attempt: int,
                       error: str) -> None:  # fmt: skip
    """File a webhook whose message Dramatiq gave up on (``DeadLetters``)."""
    app = rt.apps.apps.get(app_id)
    url = app.webhook.url if app is not None and app.webhook is not None else ""
    dead_letter(rt, app_id, webhook_id, url, body, None, error, attempt)
    # Its first line only: a database error's text goes on to quote the statement's
    # parameters, the body and the URL (which may carry the receiver's token).
    log.error("webhook.dead_lettered", app=app_id, webhook_id=webhook_id, attempt=attempt,
              status_code=None, error=error.splitlines()[0] if error else error)  # fmt: skip


def _count(app_id: str, outcome: str) -> None:
    metrics.WEBHOOK_ATTEMPTS.labels(app_id, outcome).inc()
