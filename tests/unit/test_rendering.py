"""Templates: autoescaped HTML, literal template syntax, strict variables, render errors."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import RenderError
from tests.conftest import make_event
from workers.rendering import Renderer
from workers.store.tables import FailedEmail

CONTEXT = {"product": "notes", "logo_url": None, "support_email": None, "name": None,
           "code": "123456", "link": "https://app.example.com/x?t=t", "ttl_minutes": 5}  # fmt: skip


def test_html_is_escaped_and_template_syntax_in_data_stays_literal():
    rendered = Renderer().render(
        "signup", "en", {**CONTEXT, "name": '<script>alert(1)</script> {{7*7}} "Ada"'}
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}} &#34;Ada&#34;" in rendered.html
    assert "49" not in rendered.text and "{{7*7}}" in rendered.text
    assert rendered.subject == "Your notes verification code"
    assert "123456" in rendered.text and "123456" in rendered.html


def test_a_missing_variable_is_a_render_error_not_an_empty_string():
    with pytest.raises(RenderError, match="'code' is undefined"):
        Renderer().render("signup", "en", {k: v for k, v in CONTEXT.items() if k != "code"})
    with pytest.raises(RenderError, match="TemplateNotFound"):
        Renderer().render("no_such_kind", "en", CONTEXT)


def failed_rows(unit):
    with Session(unit.rt.engine) as session:
        return list(session.scalars(select(FailedEmail)))


def test_a_broken_template_dead_letters_the_email_at_once(unit, tmp_path: Path):
    (tmp_path / "signup").mkdir()
    (tmp_path / "signup" / "subject.txt").write_text("{{ app }")
    unit.rt.renderer = Renderer(tmp_path)
    unit.rt.dispatch.event(json.dumps(make_event()))
    unit.drain()
    [failed] = failed_rows(unit)
    assert failed.reason == "render_error"
    assert failed.error.startswith("template 'signup': TemplateSyntaxError")
    assert failed.attempts == 0
    assert unit.transport.attempts == 0


def test_a_broken_catalog_dead_letters_as_render_error(unit, tmp_path: Path):
    catalog = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Hello %(name)s,"\nmsgstr "Bonjour %(nme)s,"\n'
    )
    unit.rt.renderer = Renderer(overrides=tmp_path)
    event = make_event(data={"email": "ada@example.com", "name": "Ada", "locale": "fr"})
    unit.rt.dispatch.event(json.dumps(event))
    unit.drain()
    [failed] = failed_rows(unit)
    assert failed.reason == "render_error" and failed.error.startswith("KeyError")
    assert unit.transport.attempts == 0
