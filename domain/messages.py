"""Building the MIME message: multipart/alternative, text first, HTML preferred.

Built with the stdlib's ``email.mime`` classes and flattened once, to bytes, by
``as_bytes``.  The modern ``EmailMessage`` API parses and re-folds every header
through policy objects, which cost about two thirds of a millisecond per mail
here; these classes take header values as given, so values are encoded for
transport (RFC 2047, quoted-printable UTF-8 bodies) as the message is built.
The bodies are quoted-printable by ``binascii``, the C codec under ``quopri``
(the ``email`` package's own encoder is pure Python and cost 0.1 ms a mail),
and the boundary is chosen up front: one starting ``=_`` cannot occur in a
quoted-printable body, so the generator's search of the whole text for a
collision (another 0.07 ms) has nothing to find.

The headers are those a demanding receiver expects on auth mail, and no more:
``Auto-Submitted`` (RFC 3834), a unique ``X-Entity-Ref-ID`` and a
``Feedback-ID``; never ``Precedence`` or ``List-Unsubscribe``, since auth mail
is not bulk or subscription mail.
"""

import binascii
import copy
import re
import uuid
from datetime import datetime
from email import policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, make_msgid
from io import BytesIO

from domain.dkim import Dkim

#: Whitespace that ends a line: meaningless in text and HTML, and what ``binascii``
#: would encode past the 76 characters a quoted-printable line may hold.
_TRAILING_BLANKS = re.compile(r"[ \t]+$", re.MULTILINE)


class _Wire(policy.Compat32):
    """compat32 with CRLF line endings, that writes a header already fit for the
    wire (short ASCII, one line) as it is: refolding every header through
    ``email.header.Header`` was half the cost of flattening a message."""

    def fold_binary(self, name: str, value) -> bytes:
        if (
            isinstance(value, str)
            and len(name) + len(value) + 2 <= self.max_line_length
            and value.isascii()
            and value.isprintable()
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


#: How messages leave: CRLF line endings, headers as built.
_WIRE = _Wire(linesep="\r\n")
#: The same for a server that takes SMTPUTF8 (an address in the headers is UTF-8).
_WIRE_UTF8 = policy.SMTPUTF8


def message_id_for(sender: str, key: str | None = None) -> str:
    """A Message-ID on the sender's domain (never the local host name): the same
    for every attempt at one email when ``key`` names it, so that a receiver
    can tell a resend from a new mail; otherwise a fresh one."""
    domain = sender.rpartition("@")[2].rstrip(">") or "mailroom.invalid"
    return f"<{key}@{domain}>" if key else make_msgid(domain=domain)


def feedback_id_for(kind: str, app: str, sender: str) -> str:
    """Gmail's ``Feedback-ID: a:b:c:SenderId``: its feedback loop counts spam
    reports per field, so per kind of mail and per app; the sender's domain is
    the SenderId.  Kinds and app ids hold no colon."""
    return f"{kind}:{app}:mailroom:{sender.rpartition('@')[2]}"


class AuthMessage(MIMEMultipart):
    """A built message, and the keys that sign it as it leaves."""

    #: Signs the bytes a plain relay is handed (``workers.dkim``); None: unsigned.
    dkim: Dkim | None = None


def _mailbox(address: str, name: str | None = None) -> str:
    # An internationalized address stays as it is (for SMTPUTF8); only the
    # display name is ever encoded.
    if not name:
        return address
    if address.isascii():
        return formataddr((name, address), charset="utf-8")
    return f"{Header(name, 'utf-8').encode()} <{address}>"


def _text(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    sender_name: str | None = None,
    kind: str | None = None,
    app: str | None = None,
    dkim: Dkim | None = None,
) -> AuthMessage:
    """``kind`` and ``app`` (the event's source) name the Feedback-ID's stream;
    ``dkim``: the sending app's keys."""
    msg = AuthMessage("alternative", boundary=f"=_{uuid.uuid4().hex}")
    msg["From"] = _mailbox(sender, sender_name)
    msg["To"] = _mailbox(recipient)
    msg["Subject"] = _text(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # RFC 3834: keeps vacation responders and ticket systems from answering.
    msg["Auto-Submitted"] = "auto-generated"
    # Unique per email (the Message-ID's own part: a resend keeps it, as it is
    # the same mail), so that Gmail never threads one code under another.
    msg["X-Entity-Ref-ID"] = message_id.strip("<>").rpartition("@")[0] or message_id
    if kind and app:
        msg["Feedback-ID"] = feedback_id_for(kind, app, sender)
    msg.dkim = dkim
    msg.attach(_utf8_part("plain", text))
    msg.attach(_utf8_part("html", html))
    return msg


def _utf8_part(subtype: str, body: str) -> MIMENonMultipart:
    """A UTF-8 text part, quoted-printable: readable in the raw, safe on 7-bit relays."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    encoded = binascii.b2a_qp(_TRAILING_BLANKS.sub("", body).encode(), istext=True)
    part.set_payload(encoded.decode("ascii"))
    return part


def as_bytes(message: Message, *, smtputf8: bool = False) -> bytes:
    """The message as it goes on the wire (CRLF line endings).

    ``smtputf8``: for a server that offers SMTPUTF8, headers in plain UTF-8 (an
    internationalized address cannot be an encoded word).
    """
    out = BytesIO()
    if smtputf8:
        message = copy.deepcopy(message)
        for name, value in message.items():
            if isinstance(value, Header):
                message.replace_header(name, str(value))
    BytesGenerator(out, policy=_WIRE_UTF8 if smtputf8 else _WIRE).flatten(message)
    return out.getvalue()
