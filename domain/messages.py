"""Building the MIME message: multipart/alternative, text first, HTML preferred."""

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid


def message_id_for(sender: str) -> str:
    """A fresh Message-ID on the sender's domain (never the local host name)."""
    domain = sender.rpartition("@")[2].rstrip(">") or "mailroom.invalid"
    return make_msgid(domain=domain)


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
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(display_name=sender_name or "", addr_spec=sender)
    msg["To"] = Address(addr_spec=recipient)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # RFC 3834: keeps vacation responders and ticket systems from answering.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
