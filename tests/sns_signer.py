"""A stand-in for Amazon SNS: a signing certificate of its own, and messages
signed the way SNS signs them (SHA1withRSA or SHA256withRSA)."""

import base64
import datetime as dt
import json
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from domain.sns import string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:mailroom-ses"
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


#: The test certificate's path, of the shape SNS's have.
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"
CERT_URL = f"https://sns.eu-west-1.amazonaws.com{CERT_PATH}"


class Signer:
    def __init__(self, cert_url: str = CERT_URL) -> None:
        self.cert_url = cert_url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict, version: str = "1") -> dict:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), _HASHES[version]())
        return {**signed, "Signature": base64.b64encode(signature).decode()}

    def notification(self, ses: dict, *, topic: str = TOPIC, version: str = "1") -> dict:
        """A signed SNS Notification carrying the SES notification ``ses``."""
        return self.sign(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": topic,
                "Message": json.dumps(ses),
                "Timestamp": "2024-05-02T10:00:00.000Z",
                "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
            },
            version,
        )

    def confirmation(self, subscribe_url: str, *, topic: str = TOPIC) -> dict:
        token = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd6"
        return self.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": str(uuid.uuid4()),
                "Token": token,
                "TopicArn": topic,
                "Message": f"You have chosen to subscribe to the topic {topic}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message.",
                "SubscribeURL": subscribe_url,
                "Timestamp": "2024-05-02T10:00:00.000Z",
            }
        )


def bounce(message_id: str, recipient: str, bounce_type: str = "Permanent", *, event=False):
    """An SES bounce notification (``event``: the configuration-set event format)."""
    kind = {"eventType": "Bounce"} if event else {"notificationType": "Bounce"}
    return {
        **kind,
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if bounce_type == "Permanent"
                    else "smtp; 452 4.2.2 mailbox full",
                }
            ],
            "timestamp": "2024-05-02T10:00:00.000Z",
            "feedbackId": "0100018f-bounce",
            "reportingMTA": "dsn; a1-2.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _mail(message_id, recipient),
    }


def complaint(message_id: str, recipient: str, feedback_type: str | None = "abuse"):
    part = {
        "complainedRecipients": [{"emailAddress": recipient}],
        "timestamp": "2024-05-02T10:05:00.000Z",
        "feedbackId": "0100018f-complaint",
        "userAgent": "Yahoo!-Mail-Feedback/2.0",
    }
    if feedback_type:
        part["complaintFeedbackType"] = feedback_type
    return {
        "notificationType": "Complaint",
        "complaint": part,
        "mail": _mail(message_id, recipient),
    }


def delivery(message_id: str, recipient: str):
    return {
        "notificationType": "Delivery",
        "delivery": {
            "timestamp": "2024-05-02T10:00:01.000Z",
            "processingTimeMillis": 546,
            "recipients": [recipient],
            "smtpResponse": "250 ok dirdel",
            "reportingMTA": "a1-2.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _mail(message_id, recipient),
    }


def _mail(message_id: str, recipient: str) -> dict:
    return {
        "timestamp": "2024-05-02T09:59:59.000Z",
        "source": "no-reply@notes.example.com",
        "messageId": message_id,
        "destination": [recipient],
    }
