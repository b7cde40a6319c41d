"""Templates and languages: every kind in every shipped locale, complete catalogs,
locale fallback and operator overrides (rendering only, no server)."""

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from domain.locales import SHIPPED_LOCALES, resolve
from domain.samples import SAMPLE_LINK, SAMPLES, sample_context
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
