"""Amazon SNS messages delivered over HTTPS: what is signed, and what may be trusted.

SNS signs a message with the key of a certificate it names by URL
(``SigningCertURL``); anyone can write a message naming any URL, so the URL
must lead, over HTTPS, to a host the operator allows.  Anyone with an AWS
account can also get SNS itself to sign a message for a topic of their own, so
the topic must be one the operator allows too.

The string SNS signs is documented in "Verifying the signatures of Amazon SNS
messages": name, newline, value, newline for each signed field, in byte order
of the names; a Notification's ``Subject`` only when the message has one.
"""

import json
import re
from urllib.parse import urlsplit

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

#: The fields each message type signs, in the order they are signed.
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    UNSUBSCRIBE_CONFIRMATION: (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
#: Signed only when present.
OPTIONAL_FIELDS = frozenset({"Subject"})
#: The hash each ``SignatureVersion`` signs with (RSA, PKCS #1 v1.5).
HASH_OF_VERSION = {"1": "sha1", "2": "sha256"}
#: Largest body taken, in bytes: SNS messages are at most 256 KiB, plus the envelope.
MAX_BODY = 300 * 1024


class Refused(Exception):
    """A message not to act on; ``reason`` is for the log and the answer, and
    ``malformed`` tells a message that is not one (400) from one not trusted (403)."""

    def __init__(self, reason: str, *, malformed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.malformed = malformed


def parse(body: bytes) -> dict[str, str]:
    """The message SNS posted (a JSON object, whatever its Content-Type says)."""
    if len(body) > MAX_BODY:
        raise Refused("body too large", malformed=True)
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused("body is not JSON", malformed=True) from None
    if not isinstance(message, dict):
        raise Refused("body is not a JSON object", malformed=True)
    kind = message.get("Type")
    if kind not in SIGNED_FIELDS:
        raise Refused("unknown message Type", malformed=True)
    for name in (*SIGNED_FIELDS[kind], "Signature", "SignatureVersion", "SigningCertURL"):
        value = message.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if value is None:
            # Unsigned messages lack these: not malformed, just not trusted.
            raise Refused(f"no {name}", malformed=name not in _SIGNATURE_FIELDS)
        if not isinstance(value, str):
            raise Refused(f"{name} is not a string", malformed=True)
    return message


_SIGNATURE_FIELDS = frozenset({"Signature", "SignatureVersion", "SigningCertURL"})


def string_to_sign(message: dict[str, str]) -> bytes:
    """What SNS signed for ``message`` (its ``Type`` decides which fields)."""
    lines = []
    for name in SIGNED_FIELDS[message["Type"]]:
        if name in OPTIONAL_FIELDS and message.get(name) is None:
            continue
        lines += [name, message[name]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def hash_name(message: dict[str, str]) -> str:
    """``sha1`` or ``sha256``, from ``SignatureVersion``."""
    version = message.get("SignatureVersion")
    if version not in HASH_OF_VERSION:
        raise Refused("unsupported SignatureVersion")
    return HASH_OF_VERSION[version]


def check_topic(message: dict[str, str], topics: frozenset[str]) -> None:
    if message.get("TopicArn") not in topics:
        raise Refused("topic not allowed" if topics else "MAILROOM_SNS_TOPIC_ARNS is unset")


#: The path of every SNS signing certificate; another is not SNS's, and a fetch
#: of each new one would cost a request to the certificate host.
CERT_PATH = re.compile(r"/SimpleNotificationService-[0-9a-f]+\.pem")


def check_cert_url(url: str, hosts: str) -> None:
    """``url`` is where SNS keeps a signing certificate, on an allowed host."""
    check_url(url, hosts, "SigningCertURL")
    parts = urlsplit(url)
    if parts.query or parts.fragment or not CERT_PATH.fullmatch(parts.path):
        raise Refused("SigningCertURL is not an SNS certificate's")


def check_url(url: str, hosts: str, what: str) -> None:
    """``url`` is HTTPS to a host ``hosts`` (a regular expression) matches whole."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise Refused(f"{what} is not a URL") from None
    if parts.scheme != "https":
        raise Refused(f"{what} is not https")
    if parts.username is not None or not re.fullmatch(hosts, host, flags=re.IGNORECASE):
        raise Refused(f"{what} host not allowed")
