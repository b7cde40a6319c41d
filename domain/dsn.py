"""Mail returned to a VERP return path, read: delivery status notifications
(RFC 3464) and feedback reports (RFC 5965) become ``Report``s.

Pure: bytes in, reports (or why there are none) out.  Whatever arrives is
someone else's text, so nothing here raises for bad input: a message that is
not a report, or a report too broken to read, is ignored with a reason for the
log.

Which email a report is about comes from a VERP address alone
(``domain.verp``), checked by its MAC: looked for among the envelope
recipients, then the report's own ``Delivered-To``, ``X-Original-To`` and
``To`` (a Maildir keeps no envelope), then the returned message's
``Return-Path`` (a feedback loop may send its reports elsewhere).  Where it was
found does not matter, the MAC does: nobody can name a mail they never saw.
The returned message's ``X-Entity-Ref-ID`` carries the email's id unsigned, so
it is never trusted: anyone could suppress any address with it.
"""

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from domain import verp
from domain.feedback import COMPLAINTS, Report, Source
from domain.vocabulary import Feedback

#: Longest ``detail`` kept (status and diagnostic), in characters.
DETAIL_LIMIT = 500

#: Content types of a DSN's machine-readable part (RFC 3464, RFC 6533).
STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
#: Content type of a feedback report's machine-readable part (RFC 5965).
FEEDBACK_TYPE = "message/feedback-report"
#: Content types of the returned message, or of its headers alone.
RETURNED_TYPES = (
    "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers",
)  # fmt: skip

#: An enhanced status code (RFC 3463): class, subject, detail.
_STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")
#: Headers of the report itself that may hold the address it was delivered to.
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "To")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


@dataclass(frozen=True)
class Returned:
    """What one returned message said."""

    #: ``dsn``, ``arf``, or None: not a report.
    kind: Source | None = None
    #: The email a valid VERP address named; None: none did.
    email_id: uuid.UUID | None = None
    reports: tuple[Report, ...] = ()
    #: Why the message gave no report, for the log (None when it gave some).
    ignored: str | None = None


def read(
    raw: bytes, envelope_recipients: Sequence[str], *, keys: Iterable[bytes], domain: str
) -> Returned:
    """The reports in ``raw``, a message delivered to ``envelope_recipients``
    (none from a Maildir), about emails whose return path one of ``keys``
    made for ``domain``."""
    try:
        return _read(raw, envelope_recipients, list(keys), domain)
    except Exception as exc:  # noqa: BLE001 (any text at all may arrive: never fail on it)
        return Returned(ignored=f"unreadable message ({type(exc).__name__})")


def _read(raw: bytes, recipients: Sequence[str], keys: list[bytes], domain: str) -> Returned:
    message = message_from_bytes(raw)
    report = next((p for p in message.walk() if p.get_content_type() == "multipart/report"), None)
    if report is None:
        return Returned(ignored=f"not a report ({message.get_content_type()})")
    children = report.get_payload()
    if not isinstance(children, list):
        return Returned(ignored="malformed report (no parts)")
    status = _child(children, STATUS_TYPES)
    feedback = _child(children, (FEEDBACK_TYPE,))
    if status is None and feedback is None:
        report_type = report.get_param("report-type") or "none"
        return Returned(ignored=f"not a delivery or feedback report (report-type {report_type})")
    kind = Source.DSN if status is not None else Source.ARF
    returned = _returned_headers(_child(children, RETURNED_TYPES))
    email_id = _email_id(message, returned, recipients, keys, domain)
    if email_id is None:
        return Returned(kind, ignored="names no mail of ours (no valid return path)")
    at = _date(message.get("Date"))
    if kind == Source.DSN:
        reports, ignored = _status_reports(status, email_id, at)
    else:
        reports, ignored = _complaint(feedback, returned, email_id, at)
    return Returned(kind, email_id, tuple(reports), None if reports else ignored)


def _child(children: list, types: Sequence[str]) -> Message | None:
    return next((c for c in children if c.get_content_type() in types), None)


# ------------------------------------------------------------ which email


def _email_id(
    message: Message,
    returned: Message | None,
    recipients: Sequence[str],
    keys: list[bytes],
    domain: str,
) -> uuid.UUID | None:
    candidates = list(recipients)
    for name in _DELIVERED_TO:
        candidates += _addresses(message.get_all(name, []))
    if returned is not None:
        candidates += _addresses(returned.get_all("Return-Path", []))
    for address in candidates:
        if email_id := verp.email_id_of(address, keys, domain):
            return email_id
    return None


def _addresses(values: list) -> list[str]:
    return [address for _, address in getaddresses([str(v) for v in values]) if address]


def _returned_headers(part: Message | None) -> Message | None:
    """The returned message's headers, whether it came whole or as headers only."""
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    return message_from_string(_text(part))


# ------------------------------------------------------------ DSN (RFC 3464)


def _status_reports(
    part: Message, email_id: uuid.UUID, at: datetime | None
) -> tuple[list[Report], str]:
    # The first block holds the per-message fields, each later one a recipient's.
    blocks = [block for block in _blocks(part)[1:] if "action" in block]
    reports = []
    for block in blocks:
        verdict = _verdict(block.get("action", "").lower(), _status(block.get("status", "")))
        if verdict is None:
            continue
        feedback, reason = verdict
        recipient = _typed_address(block.get("original-recipient")) or _typed_address(
            block.get("final-recipient")
        )
        reports.append(
            Report(
                feedback=feedback,
                source=Source.DSN,
                email_id=email_id,
                recipient=recipient,
                reason=reason,
                detail=_detail(_status(block.get("status", "")), block.get("diagnostic-code")),
                at=at,
            )
        )
    if not reports and any(block.get("action", "").lower() == "delayed" for block in blocks):
        return reports, "a delay warning (the relay is still trying)"
    return reports, "malformed report (no recipient with a known action)"


def _verdict(action: str, status: str | None) -> tuple[Feedback, str | None] | None:
    """What a recipient block says; None for ``delayed`` (a warning: the relay
    still tries, and the mail may yet arrive) and actions it does not know."""
    if action == "failed":
        if status is None:
            return Feedback.SOFT_BOUNCED, "undetermined"
        if status.startswith("5"):
            return Feedback.BOUNCED, "permanent"
        return Feedback.SOFT_BOUNCED, "transient"
    if action in ("delivered", "relayed", "expanded"):
        return Feedback.DELIVERED, None
    return None


def _status(value: str) -> str | None:
    """The enhanced status code of a ``Status`` field ("5.1.1 (bad mailbox)")."""
    found = _STATUS.match(value.strip())
    return found.group() if found else None


def _typed_address(value: str | None) -> str | None:
    """The address of a ``rfc822; ada@example.com`` field, if it is one."""
    if not value:
        return None
    address_type, _, address = value.partition(";")
    if not address:
        address = address_type
    address = address.strip().strip("<>").strip()
    return address if "@" in address and " " not in address else None


def _detail(status: str | None, diagnostic: str | None) -> str | None:
    text = " ".join(part for part in (status, diagnostic) if part)
    return _cap(text) if text else None


# ------------------------------------------------------------ ARF (RFC 5965)


def _complaint(
    part: Message, returned: Message | None, email_id: uuid.UUID, at: datetime | None
) -> tuple[list[Report], str]:
    fields = {}
    for block in _blocks(part):
        fields.update(block)
    feedback_type = fields.get("feedback-type", "").strip().lower()
    if not feedback_type:
        return [], "malformed feedback report (no Feedback-Type)"
    if feedback_type not in COMPLAINTS:
        return [], f"feedback type {feedback_type[:40]} is not a complaint"
    recipient = _typed_address(fields.get("original-rcpt-to"))
    if recipient is None and returned is not None:
        recipient = next(iter(_addresses(returned.get_all("To", []))), None)
    agent = fields.get("user-agent")
    detail = f"{feedback_type} ({agent})" if agent else feedback_type
    report = Report(
        feedback=Feedback.COMPLAINED,
        source=Source.ARF,
        email_id=email_id,
        recipient=recipient,
        reason=feedback_type,
        detail=_cap(detail),
        at=at,
    )
    return [report], ""


# ------------------------------------------------------------ fields


def _blocks(part: Message) -> list[dict[str, str]]:
    """The groups of fields of a machine-readable part, each a dict of
    lower-case names to unfolded values (the first one wins)."""
    text = _text(part)
    blocks = []
    for chunk in _BLANK_LINE.split(text.strip()):
        if not chunk.strip():
            continue
        fields: dict[str, str] = {}
        for name, value in message_from_string(chunk.strip() + "\n").items():
            fields.setdefault(name.lower(), " ".join(str(value).split()))
        blocks.append(fields)
    return blocks


def _text(part: Message) -> str:
    """A part's body as text, whether the parser split it into messages or not."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n\n".join(_as_text(m) for m in payload if isinstance(m, Message))
    body = part.get_payload(decode=True)
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return str(payload or "")


def _as_text(message: Message) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    body = message.get_payload()
    return headers + ("\n\n" + body if isinstance(body, str) and body.strip() else "")


def _date(value) -> datetime | None:
    if not value:
        return None
    try:
        at = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _cap(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
