"""What an Amazon SES notification says of sent mail, as ``Report``s.

SES speaks two dialects with the same body: identity notifications name their
kind in ``notificationType``, configuration-set event publishing in
``eventType``.  Either way ``mail.messageId`` is the id SES answered when the
mail was sent (``emails.provider_id``), and each recipient gets its own report.
Kinds other than Bounce, Complaint and Delivery (Send, Open, DeliveryDelay...)
say nothing mailroom acts on.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

from domain.feedback import COMPLAINTS, Report, Source
from domain.sns import Refused
from domain.vocabulary import Feedback

BOUNCE, COMPLAINT, DELIVERY = "Bounce", "Complaint", "Delivery"

#: ``bounceType`` -> what it says, and the outcome's reason.
BOUNCE_TYPES = {
    "Permanent": (Feedback.BOUNCED, "permanent"),
    "Transient": (Feedback.SOFT_BOUNCED, "transient"),
    "Undetermined": (Feedback.SOFT_BOUNCED, "undetermined"),
}
#: A complaint without ``complaintFeedbackType`` (SES leaves it out when the
#: receiver's report had none): RFC 5965's default.
DEFAULT_COMPLAINT = "abuse"
#: Most characters of a report's ``detail`` kept: it is for admins, not storage.
MAX_DETAIL = 500


@dataclass(frozen=True)
class Notification:
    #: ``Bounce``, ``Complaint``, ``Delivery``, or another kind ignored.
    kind: str
    provider_id: str | None
    reports: tuple[Report, ...]


def read(message: str) -> Notification:
    """The SES notification in an SNS ``Message``."""
    try:
        body = json.loads(message)
    except ValueError:
        raise Refused("Message is not an SES notification", malformed=True) from None
    if not isinstance(body, dict):
        raise Refused("Message is not an SES notification", malformed=True)
    kind = body.get("notificationType") or body.get("eventType")
    mail = body.get("mail")
    if not isinstance(kind, str) or not isinstance(mail, dict):
        raise Refused("Message is not an SES notification", malformed=True)
    provider_id = mail.get("messageId")
    reader = _READERS.get(kind)
    if reader is None:
        return Notification(kind, provider_id, ())
    part = body.get(kind.lower())
    if not isinstance(provider_id, str) or not isinstance(part, dict):
        raise Refused(f"{kind} notification without mail.messageId or {kind.lower()}",
                      malformed=True)  # fmt: skip
    try:
        reports = tuple(reader(part, provider_id))
    except (TypeError, AttributeError, KeyError, ValueError):
        raise Refused(f"{kind} notification is malformed", malformed=True) from None
    return Notification(kind, provider_id, reports)


def _at(part: dict) -> datetime | None:
    stamp = part.get("timestamp")
    if not stamp:
        return None
    at = datetime.fromisoformat(stamp)
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SES writes UTC


def _address(value: str) -> str:
    return parseaddr(value)[1] or value


def _listed(part: dict, name: str) -> list:
    recipients = part[name]
    if not isinstance(recipients, list) or not recipients:
        raise ValueError(f"{name} is not a list of recipients")
    return recipients


def _detail(*parts) -> str | None:
    text = " ".join(str(p) for p in parts if p)
    return text[:MAX_DETAIL] or None


def _bounce(part: dict, provider_id: str):
    bounce_type = part.get("bounceType")
    feedback, reason = BOUNCE_TYPES.get(bounce_type, BOUNCE_TYPES["Undetermined"])
    for recipient in _listed(part, "bouncedRecipients"):
        # A recipient SES never tried (suppressed by SES itself) has no status.
        detail = _detail(recipient.get("status"), recipient.get("diagnosticCode"))
        yield Report(
            feedback, Source.SES, provider_id=provider_id,
            recipient=_address(recipient["emailAddress"]), reason=reason,
            detail=detail or _detail(f"{bounce_type}/{part.get('bounceSubType')}"), at=_at(part),
        )  # fmt: skip


def _complaint(part: dict, provider_id: str):
    reason = part.get("complaintFeedbackType") or DEFAULT_COMPLAINT
    if reason not in COMPLAINTS:  # not-spam, virus, auth-failure: no one complained
        return
    for recipient in _listed(part, "complainedRecipients"):
        yield Report(
            Feedback.COMPLAINED, Source.SES, provider_id=provider_id,
            recipient=_address(recipient["emailAddress"]), reason=reason,
            detail=_detail(part.get("complaintSubType")), at=_at(part),
        )  # fmt: skip


def _delivery(part: dict, provider_id: str):
    for recipient in _listed(part, "recipients"):
        yield Report(
            Feedback.DELIVERED, Source.SES, provider_id=provider_id,
            recipient=_address(recipient), detail=_detail(part.get("smtpResponse")),
            at=_at(part),
        )  # fmt: skip


_READERS = {BOUNCE: _bounce, COMPLAINT: _complaint, DELIVERY: _delivery}
