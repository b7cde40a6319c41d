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


def _address(address: str, name: str | None = None) -> Address:
    # Given as parts, an internationalized local part is kept for SMTPUTF8
    # (``addr_spec=`` would refuse it); addresses arrive validated.
    local, _, domain = address.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


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
    msg["From"] = _address(sender, sender_name)
    msg["To"] = _address(recipient)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # RFC 3834: keeps vacation responders and ticket systems from answering.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
