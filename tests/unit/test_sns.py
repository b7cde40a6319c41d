"""Trusting SNS messages (what is signed, by whom, for which topic) and reading
the SES notifications they carry."""

import json
from datetime import UTC, datetime

import pytest

from domain import ses_notifications, sns
from domain.feedback import Report, Source
from domain.sns import Refused
from domain.vocabulary import Feedback
from tests.sns_signer import TOPIC, Signer, bounce, complaint, delivery
from workers.settings_feedback import SNS_CERT_HOSTS
from workers.sns import check_signature


@pytest.fixture(scope="module")
def signer():
    return Signer()


def test_string_to_sign_of_a_notification_is_the_documented_one():
    # The example in AWS's "Verifying the signatures of Amazon SNS messages".
    message = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2019-01-31T04:37:04.321Z",
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
    }
    assert sns.string_to_sign(message) == (
        b"Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
        b"Subject\nMy subject\nTimestamp\n2019-01-31T04:37:04.321Z\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\n"
        b"Type\nNotification\n"
    )
    del message["Subject"]  # not signed when absent, not signed as empty
    assert b"Subject" not in sns.string_to_sign(message)


def test_string_to_sign_of_a_confirmation_includes_the_url_and_token():
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "3d891288-136d-417f-bc05-901c108273ee",
        "Token": "233",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:topic",
        "Message": "line one\nline two",
        "SubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2019-01-31T19:25:13.719Z",
        "Subject": "never signed in a confirmation",
    }
    assert sns.string_to_sign(message) == (
        b"Message\nline one\nline two\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\n"
        b"SubscribeURL\nhttps://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\n2019-01-31T19:25:13.719Z\nToken\n233\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:topic\nType\nSubscriptionConfirmation\n"
    )
    unsubscribed = {**message, "Type": "UnsubscribeConfirmation"}
    assert sns.string_to_sign(unsubscribed).startswith(b"Message\nline one")


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_message_verifies_with_either_version(signer, version):
    message = signer.notification(bounce("id-1", "ada@example.com"), version=version)
    parsed = sns.parse(json.dumps(message).encode())
    check_signature(parsed, signer.key.public_key())  # raises if not


def test_a_version_2_signature_claimed_as_version_1_does_not_verify(signer):
    message = {**signer.notification(bounce("id-1", "ada@example.com"), version="2")}
    message["SignatureVersion"] = "1"
    with pytest.raises(Refused, match="signature does not match"):
        check_signature(message, signer.key.public_key())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", json.dumps(bounce("id-1", "eve@example.com"))),
        ("TopicArn", "arn:aws:sns:eu-west-1:123456789012:other"),
        ("Subject", "added after signing"),
        ("Timestamp", "2024-05-02T10:00:00.001Z"),
        ("Type", "SubscriptionConfirmation"),
    ],
)
def test_any_signed_field_changed_after_signing_is_refused(signer, field, value):
    message = signer.notification(bounce("id-1", "ada@example.com"))
    message[field] = value
    if field == "Type":
        message |= {"SubscribeURL": "https://sns.eu-west-1.amazonaws.com/", "Token": "t"}
    with pytest.raises(Refused, match="signature does not match") as caught:
        check_signature(sns.parse(json.dumps(message).encode()), signer.key.public_key())
    assert not caught.value.malformed


def test_another_key_does_not_verify(signer):
    message = signer.notification(bounce("id-1", "ada@example.com"))
    with pytest.raises(Refused, match="signature does not match"):
        check_signature(message, Signer().key.public_key())


def test_a_signature_that_is_not_base64_is_refused(signer):
    message = {**signer.notification(bounce("id-1", "ada@example.com")), "Signature": "%%"}
    with pytest.raises(Refused, match="Signature is not base64"):
        check_signature(message, signer.key.public_key())


@pytest.mark.parametrize("version", ["3", "", "SHA256"])
def test_an_unknown_signature_version_is_refused(signer, version):
    message = {
        **signer.notification(bounce("id-1", "ada@example.com")),
        "SignatureVersion": version,
    }
    with pytest.raises(Refused, match="unsupported SignatureVersion"):
        check_signature(message, signer.key.public_key())


@pytest.mark.parametrize("missing", ["Signature", "SignatureVersion", "SigningCertURL"])
def test_an_unsigned_message_is_refused_as_untrusted(signer, missing):
    message = signer.notification(bounce("id-1", "ada@example.com"))
    del message[missing]
    with pytest.raises(Refused, match=f"no {missing}") as caught:
        sns.parse(json.dumps(message).encode())
    assert not caught.value.malformed  # 403, not 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'{"Type": "Surprise"}', "unknown message Type"),
        (b'{"Type": "Notification", "Message": "m"}', "no MessageId"),
        (b" " * (sns.MAX_BODY + 1), "body too large"),
    ],
)
def test_what_is_not_an_sns_message_is_malformed(body, reason):
    with pytest.raises(Refused) as caught:
        sns.parse(body)
    assert caught.value.reason == reason
    assert caught.value.malformed


def test_a_field_of_the_wrong_type_is_malformed(signer):
    message = {**signer.notification(bounce("id-1", "ada@example.com")), "Message": {"a": 1}}
    with pytest.raises(Refused, match="Message is not a string") as caught:
        sns.parse(json.dumps(message).encode())
    assert caught.value.malformed


def test_only_allowed_topics_are_taken():
    message = {"TopicArn": TOPIC}
    sns.check_topic(message, frozenset({TOPIC, "arn:aws:sns:us-east-1:1:other"}))
    with pytest.raises(Refused, match="^topic not allowed$"):
        sns.check_topic(message, frozenset({"arn:aws:sns:us-east-1:1:other"}))
    with pytest.raises(Refused, match="MAILROOM_SNS_TOPIC_ARNS is unset"):
        sns.check_topic(message, frozenset())


CERT = "/SimpleNotificationService-0f.pem"
HOST_REFUSED = "SigningCertURL host not allowed"
NOT_A_CERT = "SigningCertURL is not an SNS certificate's"


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://SNS.EU-WEST-1.AMAZONAWS.COM/SimpleNotificationService-0f.pem",
    ],
)
def test_certificates_from_sns_hosts_are_allowed(url):
    sns.check_cert_url(url, SNS_CERT_HOSTS)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://sns.eu-west-1.amazonaws.com/cert.pem", "SigningCertURL is not https"),
        ("ftp://sns.eu-west-1.amazonaws.com/cert.pem", "SigningCertURL is not https"),
        (
            "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",
            "SigningCertURL host not allowed",
        ),
        (
            "https://evil.example/sns.eu-west-1.amazonaws.com/c.pem",
            "SigningCertURL host not allowed",
        ),
        (
            "https://sns.eu-west-1.amazonaws.com@evil.example/c.pem",
            "SigningCertURL host not allowed",
        ),
        ("https://user@sns.eu-west-1.amazonaws.com/c.pem", "SigningCertURL host not allowed"),
        ("https://evil.example#@sns.eu-west-1.amazonaws.com/", "SigningCertURL host not allowed"),
        ("https://xsns.eu-west-1.amazonaws.com/c.pem", "SigningCertURL host not allowed"),
        ("https://s3.amazonaws.com/sns.eu-west-1.amazonaws.com", "SigningCertURL host not allowed"),
        ("https://sns.eu-west-1.amazonaws.com:x/c.pem", "SigningCertURL is not a URL"),
        ("https://[::1/c.pem", "SigningCertURL is not a URL"),
        ("/cert.pem", "SigningCertURL is not https"),
        # Anyone's S3 bucket named "sns", in one region or another.
        (f"https://sns.s3.amazonaws.com{CERT}", HOST_REFUSED),
        (f"https://sns.s3-us-west-2.amazonaws.com{CERT}", HOST_REFUSED),
        (f"https://sns.s3-external-1.amazonaws.com{CERT}", HOST_REFUSED),
        # On the right host, anything but a certificate of SNS's: each would be one more fetch.
        ("https://sns.eu-west-1.amazonaws.com/cert.pem", NOT_A_CERT),
        (f"https://sns.eu-west-1.amazonaws.com{CERT}?x=1", NOT_A_CERT),
        (f"https://sns.eu-west-1.amazonaws.com{CERT}#x", NOT_A_CERT),
        (f"https://sns.eu-west-1.amazonaws.com/a{CERT}", NOT_A_CERT),
    ],
)  # fmt: skip
def test_certificates_from_other_hosts_or_without_https_are_refused(url, reason):
    with pytest.raises(Refused) as caught:
        sns.check_cert_url(url, SNS_CERT_HOSTS)
    assert caught.value.reason == reason


def test_the_host_pattern_is_matched_whole():
    sns.check_url("https://localhost:8443/cert.pem", "localhost", "SigningCertURL")
    with pytest.raises(Refused, match="host not allowed"):
        sns.check_url("https://localhost.evil.example/cert.pem", "localhost", "SigningCertURL")
    with pytest.raises(Refused, match="host not allowed"):
        sns.check_url("https://127.0.0.1/cert.pem", "localhost", "SigningCertURL")


def test_bounces_read_as_reports_in_either_format():
    at = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    for event in (False, True):
        hard = ses_notifications.read(json.dumps(bounce("m-1", "Ada@Example.com", event=event)))
        assert hard == ses_notifications.Notification(
            "Bounce",
            "m-1",
            (
                Report(
                    Feedback.BOUNCED, Source.SES, provider_id="m-1", recipient="Ada@Example.com",
                    reason="permanent", detail="5.1.1 smtp; 550 5.1.1 user unknown", at=at,
                ),
            ),
        )  # fmt: skip
    for kind, reason in (("Transient", "transient"), ("Undetermined", "undetermined")):
        [soft] = ses_notifications.read(json.dumps(bounce("m-1", "a@x.example", kind))).reports
        assert (soft.feedback, soft.reason) == (Feedback.SOFT_BOUNCED, reason)


def test_a_bounce_without_status_keeps_its_type_as_detail():
    body = bounce("m-1", "ada@example.com")
    body["bounce"] |= {"bounceSubType": "OnAccountSuppressionList"}
    body["bounce"]["bouncedRecipients"] = [{"emailAddress": "ada@example.com"}]
    [report] = ses_notifications.read(json.dumps(body)).reports
    assert report.detail == "Permanent/OnAccountSuppressionList"


def test_a_bounce_names_each_recipient():
    body = bounce("m-1", "ada@example.com")
    body["bounce"]["bouncedRecipients"].append({"emailAddress": "Bob <bob@example.com>"})
    reports = ses_notifications.read(json.dumps(body)).reports
    assert [r.recipient for r in reports] == ["ada@example.com", "bob@example.com"]


def test_complaints_and_deliveries_read_as_reports():
    [abuse] = ses_notifications.read(json.dumps(complaint("m-2", "ada@example.com"))).reports
    assert (abuse.feedback, abuse.reason, abuse.provider_id) == (
        Feedback.COMPLAINED, "abuse", "m-2",
    )  # fmt: skip
    untyped = complaint("m-2", "ada@example.com", feedback_type=None)
    [report] = ses_notifications.read(json.dumps(untyped)).reports
    assert report.reason == "abuse"
    fraud = complaint("m-2", "ada@example.com", feedback_type="fraud")
    assert ses_notifications.read(json.dumps(fraud)).reports[0].reason == "fraud"
    [done] = ses_notifications.read(json.dumps(delivery("m-3", "ada@example.com"))).reports
    assert (done.feedback, done.reason, done.detail) == (Feedback.DELIVERED, None, "250 ok dirdel")
    # A "complaint" that is no complaint: its recipient said "not spam".
    for other in ("not-spam", "virus", "auth-failure"):
        kind = complaint("m-2", "ada@example.com", feedback_type=other)
        assert ses_notifications.read(json.dumps(kind)).reports == ()


def test_a_timestamp_without_an_offset_is_utc():
    body = delivery("m-3", "ada@example.com")
    body["delivery"]["timestamp"] = "2024-05-02T10:00:00"
    [done] = ses_notifications.read(json.dumps(body)).reports
    assert done.at == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def test_other_kinds_are_taken_but_say_nothing():
    for body in (
        {"eventType": "Open", "mail": {"messageId": "m-1"}, "open": {}},
        {"eventType": "DeliveryDelay", "mail": {"messageId": "m-1"}},
        {"notificationType": "AmazonSnsSubscriptionSucceeded", "mail": {}},
    ):
        notification = ses_notifications.read(json.dumps(body))
        assert notification.reports == () and notification.kind == body.get(
            "eventType", body.get("notificationType")
        )


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        json.dumps({"notificationType": "Bounce"}),
        json.dumps({"notificationType": "Bounce", "mail": {"messageId": "m"}}),
        json.dumps({"notificationType": "Bounce", "mail": {"messageId": "m"}, "bounce": {}}),
        json.dumps({"eventType": "Delivery", "mail": {"messageId": "m"}, "delivery": {
            "recipients": "ada@example.com"}}),
        json.dumps({"eventType": "Delivery", "mail": {"messageId": "m"}, "delivery": {
            "recipients": ["ada@example.com"], "timestamp": "yesterday"}}),
    ],
)  # fmt: skip
def test_what_is_not_an_ses_notification_is_malformed(message):
    with pytest.raises(Refused) as caught:
        ses_notifications.read(message)
    assert caught.value.malformed
