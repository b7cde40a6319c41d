"""What comes back about mail already handed over, in one shape whatever
reported it: an SES notification, a delivery status notification (RFC 3464)
or a feedback report (RFC 5965)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.vocabulary import Feedback

#: Feedback types (RFC 5965, SES's ``complaintFeedbackType``) that are a
#: complaint about the mail; ``not-spam``, ``virus`` and ``auth-failure`` are not.
COMPLAINTS = ("abuse", "fraud", "other")


class Source(StrEnum):
    """What reported it (``suppressions.source``)."""

    SES = "ses"
    #: A delivery status notification returned to the VERP address.
    DSN = "dsn"
    #: A feedback report (a complaint) returned to the VERP address.
    ARF = "arf"
    ADMIN = "admin"


@dataclass(frozen=True)
class Report:
    """One thing said of one email's recipient.  The email is named by its id
    (the VERP address, ``X-Entity-Ref-ID``) or by its provider's id (SES)."""

    feedback: Feedback
    source: Source
    email_id: uuid.UUID | None = None
    provider_id: str | None = None
    #: The address the report names; a report naming another one is ignored.
    recipient: str | None = None
    #: The outcome's ``reason``: ``permanent``, ``transient`` or ``undetermined``
    #: for a bounce, the feedback type (``abuse``) for a complaint.
    reason: str | None = None
    #: The report's own words: status code and diagnostic, for admins.
    detail: str | None = None
    #: When the provider says it happened.
    at: datetime | None = None
