"""Webhooks' pure parts: the signature a Standard Webhooks receiver verifies, the
body, which outcomes go where, and the apps file's webhook keys."""

import base64
import json
import time

import pytest
import standardwebhooks

from domain import webhooks
from domain.errors import ConfigError
from workers.apps import load_directory
from workers.settings import load_settings
from workers.webhook_relay import wanted

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
RECORD = {
    "event_id": "0b9c6a0e-2f0e-4a53-9f3e-1f4a3c2b1a00",
    "email_id": "5d1f0c1e-9a8b-4c7d-8e6f-5a4b3c2d1e0f",
    "app": "notes",
    "kind": "signup",
    "status": "bounced",
    "reason": "permanent",
    "transport": "smtp",
    "attempt": 1,
    "at": "2026-12-02T10:00:00.123Z",
}


def signed(secret: str, entry_id: str = "1764669600123-0"):
    body = webhooks.body(RECORD)
    msg_id = webhooks.webhook_id(entry_id)
    return body, webhooks.headers(webhooks.decode_secret(secret), msg_id, int(time.time()), body)


def test_the_standardwebhooks_library_verifies_what_mailroom_signs():
    body, headers = signed(SECRET)
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == {
        "type": "email.bounced",
        "timestamp": "2026-12-02T10:00:00.123Z",
        "data": RECORD,
    }
    assert headers["webhook-id"] == "msg_1764669600123-0"
    assert headers["content-type"] == "application/json"


def test_a_changed_body_or_another_secret_fails_verification():
    body, headers = signed(SECRET)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(body.replace("bounced", "delivered"), headers)
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(body, headers)


def test_an_unpadded_secret_is_the_same_key():
    key = bytes(range(25))  # 25 bytes: base64 with padding "=="
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("==")
    assert webhooks.decode_secret(padded.rstrip("=")) == key == webhooks.decode_secret(padded)


@pytest.mark.parametrize(
    "secret",
    [
        base64.b64encode(bytes(32)).decode(),  # no whsec_ prefix
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # too short
        "whsec_not*base64!",
        "whsec_",
    ],
)
def test_a_secret_that_is_not_whsec_base64_of_24_bytes_is_refused(secret):
    with pytest.raises(ValueError, match=r"^must be whsec_<base64 of at least 24 random bytes>"):
        webhooks.decode_secret(secret)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/mailroom?x=1", None),
        ("http://localhost:8080/hook", None),
        ("http://127.0.0.5/hook", None),
        ("http://[::1]:9000/hook", None),
        ("http://hooks.example.com/hook", "must be https (http only for localhost, "
                                          "127.0.0.0/8 or [::1])"),
        ("http://10.0.0.1/hook", "must be https (http only for localhost, 127.0.0.0/8 or [::1])"),
        ("ftp://hooks.example.com/", "must be an absolute https URL"),
        ("/hook", "must be an absolute https URL"),
        ("https://hooks.example.com/#top", "must have no fragment"),
        ("https://u:p@hooks.example.com/", "must carry no user or password (the signature "
                                           "authenticates mailroom)"),
    ],
)  # fmt: skip
def test_webhook_urls_are_https_or_loopback(url, problem):
    assert webhooks.url_problem(url) == problem


def test_the_secret_is_never_in_a_repr():
    hook = webhooks.Webhook("https://h.example.com/", webhooks.decode_secret(SECRET))
    assert "secret" not in repr(hook) and str(bytes(range(32))) not in repr(hook)


# --- the apps file --------------------------------------------------------------------

URL = 'webhook_url = "https://n.example.com/h"'
APP = """
[apps.notes]
from = "Notes <no-reply@notes.example.com>"
public_base_url = "https://notes.example.com"
{webhook}
"""


def directory(tmp_path, webhook: str, **environ):
    path = tmp_path / "apps.toml"
    path.write_text(APP.format(webhook=webhook))
    return load_directory(load_settings({"MAILROOM_APPS_FILE": str(path), **environ}))


def config_error(tmp_path, webhook: str) -> str:
    with pytest.raises(ConfigError) as caught:
        directory(tmp_path, webhook)
    return str(caught.value)


def test_an_app_with_a_webhook_in_the_file(tmp_path):
    webhook = f'{URL}\nwebhook_secret = "{SECRET}"\nwebhook_events = ["bounced", "complained"]'
    notes = directory(tmp_path, webhook).apps["notes"]
    assert notes.webhook.url == "https://n.example.com/h"
    assert notes.webhook.secret == bytes(range(32))
    assert notes.webhook.events == {"bounced", "complained"}
    assert SECRET.removeprefix("whsec_") not in repr(notes)


def test_the_secret_may_come_from_an_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTES_HOOK_SECRET", SECRET)
    notes = directory(tmp_path, f'{URL}\nwebhook_secret_env = "NOTES_HOOK_SECRET"').apps["notes"]
    assert notes.webhook.secret == bytes(range(32))
    assert notes.webhook.events is None  # every status


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        ('webhook_url = "http://n.example.com/h"\nwebhook_secret = "' + SECRET + '"',
         "apps.notes.webhook_url: must be https (http only for localhost, 127.0.0.0/8 or [::1])"),
        ('webhook_url = "https://n.example.com/h"\nwebhook_secret = "whsec_c2hvcnQ="',
         "apps.notes.webhook_secret: must be whsec_<base64 of at least 24 random bytes> "
         "(python -c \"import base64,os; print('whsec_' + base64.b64encode(os.urandom(32))"
         ".decode())\")"),
        ('webhook_url = "https://n.example.com/h"',
         "apps.notes: webhook_url needs exactly one of webhook_secret, webhook_secret_env"),
        ('webhook_url = "https://n.example.com/h"\nwebhook_secret = "' + SECRET + '"\n'
         'webhook_secret_env = "X"',
         "apps.notes: webhook_url needs exactly one of webhook_secret, webhook_secret_env"),
        ('webhook_secret = "' + SECRET + '"',
         "apps.notes: webhook settings without webhook_url"),
        ('webhook_url = "https://n.example.com/h"\nwebhook_secret_env = "MAILROOM_NO_SUCH_VAR"',
         "apps.notes.webhook_secret_env: environment variable MAILROOM_NO_SUCH_VAR is not set"),
        ('webhook_url = "https://n.example.com/h"\nwebhook_secret = "' + SECRET + '"\n'
         'webhook_events = ["bounced", "opened"]',
         "apps.notes.webhook_events: unknown status opened (known: sent, deferred, "
         "dead_lettered, suppressed, bounced, complained, delivered)"),
    ],
)  # fmt: skip
def test_a_bad_webhook_is_one_configuration_error_line(tmp_path, webhook, message):
    assert config_error(tmp_path, webhook) == f"MAILROOM_APPS_FILE: {message}"
    assert SECRET.removeprefix("whsec_") not in message


def test_a_bad_secret_in_the_environment_is_named_by_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTES_HOOK_SECRET", "whsec_c2hvcnQ=")
    assert config_error(
        tmp_path,
        'webhook_url = "https://n.example.com/h"\nwebhook_secret_env = "NOTES_HOOK_SECRET"',
    ).startswith(
        "MAILROOM_APPS_FILE: apps.notes.webhook_secret_env: NOTES_HOOK_SECRET must be whsec_"
    )


def test_only_the_statuses_an_app_wants_go_to_its_webhook(tmp_path):
    apps = directory(tmp_path, f'{URL}\nwebhook_secret = "{SECRET}"\nwebhook_events = ["bounced"]')
    app_id, body = wanted(apps, RECORD)
    assert (app_id, json.loads(body)["data"]) == ("notes", RECORD)
    assert wanted(apps, {**RECORD, "status": "sent"}) is None
    assert wanted(apps, {**RECORD, "app": "billing"}) is None  # no such app, no default
