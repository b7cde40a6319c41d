"""Templates and languages: every kind in every shipped locale, complete catalogs,
locale fallback, per-app branding, operator overrides and previews."""

import json
import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from domain.locales import SHIPPED_LOCALES, resolve
from domain.samples import SAMPLE_LINK, SAMPLES, sample_context
from tests.conftest import make_event
from tests.mail import parts
from tests.test_cli import run
from workers.rendering import TEMPLATES_DIR, Renderer

BRANDING = {"product": "Notes", "logo_url": None, "support_email": "help@notes.example.com"}
LOCALES = ["en", *SHIPPED_LOCALES]
MARKERS = re.compile(r"\{\{|\}\}|\{%|%\}|%\([a-z_]+\)s")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def extracted() -> dict:
    """Every message the templates ask for, as pybabel extract sees them."""
    options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
    method_map = [("**.html", "jinja2"), ("**.txt", "jinja2")]
    messages = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(TEMPLATES_DIR), method_map, {"**.html": options, "**.txt": options}
    ):
        messages[message if isinstance(message, str) else message[0]] = message
    return messages


def test_every_kind_has_its_three_templates_extending_the_base():
    kinds = Renderer().kinds()
    assert sorted(kinds) == sorted(SAMPLES)
    for kind in kinds:
        folder = TEMPLATES_DIR / kind
        assert sorted(p.name for p in folder.iterdir()) == ["body.html", "body.txt", "subject.txt"]
        assert '{% extends "_base.html" %}' in (folder / "body.html").read_text()
        assert '{% extends "_base.txt" %}' in (folder / "body.txt").read_text()
        assert len((folder / "subject.txt").read_text().strip().splitlines()) == 1


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_kind_renders_strictly_in_every_locale(kind, locale):
    rendered = Renderer().render(kind, locale, {**sample_context(kind), **BRANDING})
    assert rendered.locale == locale
    for part in (rendered.subject, rendered.text, rendered.html):
        assert not MARKERS.search(part), part
    assert "\n" not in rendered.subject and len(rendered.subject) < 120
    assert f'<html lang="{locale.replace("_", "-")}">' in rendered.html
    assert "help@notes.example.com" in rendered.text and "Notes" in rendered.text
    if kind in ("signup", "login", "email_change"):
        code = SAMPLES[kind]["code"]
        assert code in rendered.text and code in rendered.html
    if "link" in sample_context(kind):
        assert SAMPLE_LINK in rendered.text
        # A visible fallback link under every button.
        assert rendered.html.count(f'href="{SAMPLE_LINK}"') == 2
    if locale != "en":
        english = Renderer().render(kind, "en", {**sample_context(kind), **BRANDING})
        assert rendered.subject != english.subject
        assert rendered.text != english.text


def test_a_missing_translation_in_any_shipped_locale_fails():
    wanted = extracted()
    assert len(wanted) > 40
    for locale in SHIPPED_LOCALES:
        path = TEMPLATES_DIR / "locale" / locale / "LC_MESSAGES" / "messages.po"
        catalog = read_po(path.open("rb"))
        for msgid, message in wanted.items():
            entry = catalog.get(msgid)
            assert entry is not None, f"{locale}: {msgid!r} is missing"
            assert not entry.fuzzy, f"{locale}: {msgid!r} is fuzzy"
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            assert all(strings), f"{locale}: {msgid!r} is untranslated"
            expected = set(PLACEHOLDER.findall(msgid if isinstance(message, str) else message[1]))
            for string in strings:
                assert set(PLACEHOLDER.findall(string)) <= expected | {"%(count)s"}, (locale, msgid)
                if "%(count)s" not in expected:
                    assert set(PLACEHOLDER.findall(string)) == expected, (locale, msgid)


def test_the_pot_template_is_current():
    pot = read_po((TEMPLATES_DIR / "locale" / "messages.pot").open("rb"))
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in pot if m.id} == set(extracted())


@pytest.mark.parametrize(
    ("requested", "app_default", "expected"),
    [
        ("zh-TW", None, "zh_CN"),  # zh-TW -> zh -> the Chinese we ship
        ("zh-CN", None, "zh_CN"),
        ("fr-CA", None, "fr"),
        ("es-MX", "fr", "es"),
        ("de", None, "en"),
        ("de", "fr", "fr"),
        ("", "es", "es"),
        (None, None, "en"),
        ("not a locale!", None, "en"),
    ],
)
def test_locale_fallback(requested, app_default, expected):
    assert resolve(requested, SHIPPED_LOCALES, app_default) == expected


def test_mail_arrives_in_the_recipients_language(mailroom, smtp_sink):
    mailroom.publish(make_event(data={"email": "li@example.com", "name": "Li", "locale": "zh-TW"}))
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "您的 notes 验证码"
    text, html = parts(message)
    assert text.startswith("Li，您好：") and '<html lang="zh-CN">' in html


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
    from tests.test_api import ApiServer

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


# ---------------------------------------------------------------- overrides


def test_operators_override_templates_and_messages_per_app(tmp_path):
    overrides = tmp_path / "overrides"
    (overrides / "signup").mkdir(parents=True)
    (overrides / "signup" / "subject.txt").write_text("{{ product }}: your code\n")
    (overrides / "billing" / "signup").mkdir(parents=True)
    (overrides / "billing" / "signup" / "body.txt").write_text(
        '{% extends "_base.txt" %}{% block content %}Billing code {{ code }}{% endblock %}\n'
    )
    catalog = overrides / "locale" / "fr" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Your verification code is:"\nmsgstr "Voici votre code :"\n'
    )
    from domain.apps import App

    renderer = Renderer(overrides=overrides)
    billing = App(id="billing", from_address="a@billing.example.org", base_url="https://b.example")
    context = {**sample_context("signup"), **BRANDING}

    plain = renderer.render("signup", "fr", context)
    assert plain.subject == "Notes: your code"  # everyone's override
    assert "Voici votre code : 123456" in plain.text  # one message reworded
    assert "Ou confirmez votre adresse" in plain.text  # the rest still shipped French
    own = renderer.render("signup", "fr", context, app=billing)
    assert own.text.startswith("Billing code 123456")  # the app's own body
    assert "Voici votre code" in own.html


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
