"""The ``ses`` transport: Amazon SES v2 ``SendEmail`` with the raw MIME message.

Credentials come from the standard AWS chain, never from mailroom's settings.
Throttling and 5xx are transient; a refused message is permanent; a sender or
account SES will not send for is a configuration error.

boto3 is imported when a transport is built, not with this module: the settings
check reads NAME, REQUIRED and ``check`` here, and boto3 takes ~80 ms to import.
"""

import os
from email.message import Message
from typing import TYPE_CHECKING

from domain.errors import ConfigError, PermanentError, TransientError, TransportConfigError
from domain.messages import as_bytes
from workers.transports.base import Receipt

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

NAME = "ses"

#: Nothing: the region may come from AWS_REGION, credentials from the AWS chain.
REQUIRED: tuple[str, ...] = ()

HINT = "check MAILROOM_SES_REGION (or MAILROOM_SES_ENDPOINT_URL) and the network to AWS"

#: Error codes worth retrying (the 5xx ones are retried whatever their code).
TRANSIENT_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
     "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)  # fmt: skip
#: Error codes that mean the SES set-up, not the message, is wrong.
CONFIG_CODES = {
    "MailFromDomainNotVerifiedException": "MAILROOM_MAIL_FROM",
    "AccountSuspendedException": "MAILROOM_SES_REGION",
    "SendingPausedException": "MAILROOM_SES_CONFIGURATION_SET",
    "ConfigurationSetDoesNotExistException": "MAILROOM_SES_CONFIGURATION_SET",
    "NotFoundException": "MAILROOM_SES_CONFIGURATION_SET",
    "AccessDeniedException": "AWS credentials",
    "UnrecognizedClientException": "AWS credentials",
    "InvalidClientTokenId": "AWS credentials",
    "SignatureDoesNotMatch": "AWS credentials",
}


def check(settings) -> None:
    if not (
        settings.ses_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    ):
        raise ConfigError("MAILROOM_SES_REGION", "is required with ses (or set AWS_REGION)")


def from_settings(settings) -> "SESTransport":
    return SESTransport(
        region=settings.ses_region,
        configuration_set=settings.ses_configuration_set,
        endpoint_url=settings.ses_endpoint_url,
        timeout=settings.smtp_timeout,
    )


def classify(error: "ClientError") -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    text = f"SES {code}: {message}".strip()
    if code in CONFIG_CODES:
        return TransportConfigError(CONFIG_CODES[code], text)
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(text)
    return PermanentError(text)


class SESTransport:
    name = NAME

    def __init__(self, *, region=None, configuration_set=None, endpoint_url=None, timeout=15.0):
        import boto3
        from botocore.config import Config

        self.region = region
        self.configuration_set = configuration_set
        # Retries are ours (quick ones, then the broker's): one attempt here.
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
        )
        self.client = boto3.client(
            "sesv2", region_name=region, endpoint_url=endpoint_url, config=config
        )

    def send(
        self, message: Message, *, sender: str, recipient: str, return_path: str | None = None
    ) -> Receipt:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        request = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": as_bytes(message, smtputf8=not recipient.isascii())}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_email(**request)
        except ClientError as exc:
            raise classify(exc) from exc
        except NoCredentialsError as exc:
            raise TransportConfigError("AWS credentials", f"SES: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"SES unreachable: {exc}") from exc
        return Receipt(
            provider_id=response.get("MessageId"),
            destination=f"SES {self.client.meta.region_name}",
            transport=self.name,
        )

    def close(self) -> None:
        self.client.close()
