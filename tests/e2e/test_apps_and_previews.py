"""Templates end to end: mail in the recipient's language, several apps with their
branding on one fleet, and previews from the CLI."""

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from domain.locales import SHIPPED_LOCALES
from domain.samples import SAMPLES
from tests.commands import run
from tests.conftest import make_event
from tests.mail import parts
from tests.servers import ApiServer

LOCALES = ["en", *SHIPPED_LOCALES]


def test_mail_arrives_in_the_recipients_language(mailroom, smtp_sink):
    mailroom.publish(make_event(data={"email": "li@example.com", "name": "Li", "locale": "zh-TW"}))
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "您的 Notes 验证码"
    text, html = parts(message)
    assert text.startswith("Li，您好：") and '<html lang="zh-CN">' in html


def test_without_a_product_name_mail_names_the_sender_never_the_source(make_mailroom, smtp_sink):
    mailroom = make_mailroom(MAILROOM_MAIL_FROM="no-reply@notes.example.com")
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="cli"))
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Your notes.example.com verification code"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "notes.example.com",
        "no-reply@notes.example.com",
    )
    assert "cli" not in parts(message)[0]


# ---------------------------------------------------------------- apps


APPS = """
default = "notes"

[apps.notes]
product_name = "Notes"
from = "Notes <no-reply@notes.example.com>"
public_base_url = "https://notes.example.com"
support_email = "help@notes.example.com"
logo_url = "https://notes.example.com/logo.png"

[apps.billing]
product_name = "Billing Pro"
from = "Billing Pro <accounts@billing.example.org>"
public_base_url = "https://billing.example.org/app"
default_locale = "es"
api_key_sha256 = ["{hash}"]
"""


@pytest.fixture
def apps_file(tmp_path):
    from domain.tokens import api_key_digest

    path = tmp_path / "apps.toml"
    path.write_text(APPS.replace("{hash}", api_key_digest("mrk_billing-key-from-config")))
    return path


def test_one_fleet_serves_several_apps_with_their_branding(make_mailroom, smtp_sink, apps_file):
    mailroom = make_mailroom(MAILROOM_APPS_FILE=str(apps_file))
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    mailroom.publish(make_event(data={"email": "bob@example.com"}, source="billing"))
    mailroom.publish(make_event(data={"email": "eve@example.com"}, source="unlisted"))
    messages = {m["To"]: m for m in smtp_sink.wait_for(3)}

    notes, billing, unlisted = (messages[a] for a in ("ada@example.com", "bob@example.com",
                                                      "eve@example.com"))  # fmt: skip
    assert notes["From"] == "Notes <no-reply@notes.example.com>"
    assert notes["Subject"] == "Your Notes verification code"
    text, html = parts(notes)
    assert "https://notes.example.com/verify-email?token=" in text
    assert 'src="https://notes.example.com/logo.png"' in html
    assert "help@notes.example.com" in text

    assert billing["From"] == "Billing Pro <accounts@billing.example.org>"
    assert billing["Subject"] == "Tu código de verificación de Billing Pro"  # its default locale
    assert "https://billing.example.org/app/verify-email?token=" in parts(billing)[0]
    # An unlisted source is served by the default app.
    assert unlisted["From"] == "Notes <no-reply@notes.example.com>"


def test_an_unknown_source_without_a_default_app_is_dead_lettered(
    make_mailroom, smtp_sink, apps_file
):
    apps_file.write_text(apps_file.read_text().replace('default = "notes"\n', ""))
    mailroom = make_mailroom(MAILROOM_APPS_FILE=str(apps_file))
    mailroom.publish(make_event(source="unlisted"))
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "unknown_source"
    assert failed.error == "source 'unlisted' is not a configured app and no default app is set"
    assert json.loads(failed.payload)["source"] == "unlisted"
    assert smtp_sink.messages == []


def test_an_api_key_from_the_apps_file_calls_the_api_for_its_app(make_mailroom, apps_file):

    mailroom = make_mailroom(start_worker=False, MAILROOM_APPS_FILE=str(apps_file))
    server = ApiServer(mailroom.rt)
    try:
        body = {"purpose": "signup", "email": "a@example.com", "code": "123456"}
        answer = server.call("POST", "/v1/codes/verify", "mrk_billing-key-from-config", json=body)
        assert answer.status_code == 400 and answer.json() == {"error": "invalid"}
        assert server.call("POST", "/v1/codes/verify", "mrk_other", json=body).status_code == 401
    finally:
        server.stop()


def test_a_broken_apps_file_is_one_line_at_start(env, apps_file):
    apps_file.write_text(apps_file.read_text().replace('from = "Notes', 'form = "Notes'))
    result = run({**env, "MAILROOM_APPS_FILE": str(apps_file)}, "preview", "signup")
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "mailroom: configuration error: MAILROOM_APPS_FILE: apps.notes.form: "
        "Extra inputs are not permitted"
    )


# ---------------------------------------------------------------- previews


def test_preview_one_kind_as_html_and_eml(tmp_path):
    html = run({}, "preview", "invite", "--locale", "es", cwd=tmp_path)
    assert html.returncode == 0 and "Ada te invita a unirte a Analytical Engines" in html.stdout
    out = tmp_path / "signup.eml"
    result = run({}, "preview", "signup", "--locale", "fr", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"signup (fr) -> {out}"
    message = message_from_bytes(out.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Votre code de vérification Mailroom"
    assert "123456" in parts(message)[0]
    bad = run({}, "preview", "nonsense", cwd=tmp_path)
    assert bad.returncode == 2 and "KIND must be one of" in bad.stderr


def test_preview_all_writes_every_kind_and_locale_and_an_index(tmp_path, apps_file, env):
    out = tmp_path / "previews"
    result = run({**env, "MAILROOM_APPS_FILE": str(apps_file)}, "preview", "--all",
                 "--app", "billing", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == len(SAMPLES) * len(LOCALES) + 1
    index = (out / "index.html").read_text()
    for kind in SAMPLES:
        for locale in LOCALES:
            assert f'href="{kind}.{locale}.html"' in index
    assert "Billing Pro" in (out / "signup.en.html").read_text()
    assert Path(out / "invite.zh_CN.html").read_text().count("Billing Pro") >= 1


def test_preview_out_goes_by_suffix_and_refuses_others(tmp_path):
    for name, starts in (("s.HTML", "<!DOCTYPE html>"), ("s.txt", "Subject: Your Mailroom")):
        result = run({}, "preview", "signup", "--out", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).read_text().startswith(starts)
    for name in ("s.pdf", "previews/", "signup"):
        result = run({}, "preview", "signup", "--out", name, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            f"Error: Invalid value for '--out': {name!r} must end in .html, .txt or .eml "
            "(the suffix picks the format)"
        )
        assert not (tmp_path / name).exists()


def test_preview_help_lists_every_kind():
    result = run({}, "preview", "--help")
    assert result.returncode == 0
    listed = " ".join(result.stdout.split())  # as wrapped to the terminal
    assert f"KIND is one of: {', '.join(SAMPLES)}." in listed


# ---------------------------------------------------------------- config show


def test_config_show_prints_the_embedded_defaults_in_force(tmp_path):
    shown = json.loads(run({}, "config", "show", "--json", cwd=tmp_path).stdout)
    assert shown["MAILROOM_MAIL_FROM"] == "Mailroom <no-reply@example.com>"
    assert shown["MAILROOM_PUBLIC_BASE_URL"] == "http://localhost:8000"
    assert shown["MAILROOM_PRODUCT_NAME"] == "Mailroom"
    assert shown["DATABASE_URL"] == "sqlite:///.mailroom/mailroom.db"
    assert shown["MAILROOM_LINK_PATH_SIGNUP"] == "/verify-email"
    assert shown["MAILROOM_TOKEN_SECRET"] == ("(generated on first use in .mailroom/token-secret)")
    # Once the secret exists (a mail was sent, say), it is shown masked, with where it lives.
    secret_file = tmp_path / ".mailroom" / "token-secret"
    secret_file.parent.mkdir()
    secret_file.write_text("a-generated-pepper-0123456789-abcdefghijklmnop")
    table = run({}, "config", "show", cwd=tmp_path)
    assert table.returncode == 0
    [row] = [line for line in table.stdout.splitlines() if "MAILROOM_TOKEN_SECRET" in line]
    assert row.split() == [
        "MAILROOM_TOKEN_SECRET", "****", "(kept", "in", ".mailroom/token-secret)", "generated"
    ]  # fmt: skip
    assert "pepper" not in table.stdout and "mnop" not in table.stdout
