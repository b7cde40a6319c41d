"""Reading received mail the way a user would: the code, the link, the token."""

import re
from urllib.parse import parse_qs, urlsplit

CODE = re.compile(r"\b(\d{6,8})\b")
LINK = re.compile(r"https?://\S+")


def parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def code_in(message) -> str:
    return CODE.search(parts(message)[0]).group(1)


def link_in(message) -> str:
    return LINK.search(parts(message)[0]).group(0)


def token_in(message) -> str:
    return parse_qs(urlsplit(link_in(message)).query)["token"][0]


def secrets_in(message) -> tuple[str, str]:
    """The code and link token of a mail that carries both."""
    return code_in(message), token_in(message)


def to(messages, address: str, subject_part: str = "") -> list:
    return [m for m in messages if m["To"] == address and subject_part in m["Subject"]]
