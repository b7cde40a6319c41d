"""Every kind in every locale, opened in headless Chromium (Debian's package):
the page renders, the expected text is visible, no template marker is left.
Screenshots land in test-artifacts/screenshots/ (not committed)."""

import re
from pathlib import Path

from domain.locales import SHIPPED_LOCALES
from domain.samples import SAMPLE_LINK, SAMPLES, sample_context
from workers.rendering import Renderer

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
BRANDING = {"product": "Notes", "logo_url": None, "support_email": "help@notes.example.com"}
MARKERS = re.compile(r"\{\{|\}\}|\{%|%\}|%\([a-z_]+\)s")
#: A phrase each locale's mails show (the footer), proving the catalog was used.
FOOTER = {
    "en": "You received this email because of an action on Notes.",
    "zh_CN": "您收到这封邮件，是因为在 Notes 上进行了相关操作。",
    "es": "Recibes este correo por una acción realizada en Notes.",
    "fr": "Vous recevez cet e-mail à la suite d’une action sur Notes.",
}


def test_every_kind_and_locale_renders_in_chromium(browser, tmp_path):
    renderer = Renderer()
    screenshots = ARTIFACTS / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 700, "height": 800})
    checked = 0
    for kind in sorted(SAMPLES):
        for locale in ["en", *SHIPPED_LOCALES]:
            rendered = renderer.render(kind, locale, {**sample_context(kind), **BRANDING})
            path = tmp_path / f"{kind}.{locale}.html"
            path.write_text(rendered.html)
            page.goto(path.as_uri())
            visible = page.inner_text("body")
            where = f"{kind}/{locale}"
            assert FOOTER[locale] in visible, where
            assert "Notes" in visible and not MARKERS.search(visible), where
            if "code" in SAMPLES[kind]:
                assert SAMPLES[kind]["code"] in visible, where
            if SAMPLE_LINK in rendered.text:
                # The button and, visible under it, the link itself.
                assert page.locator(f'a[href="{SAMPLE_LINK}"]').count() == 2, where
                assert SAMPLE_LINK in visible, where
            width = page.evaluate("document.querySelector('table.card').offsetWidth")
            assert width <= 600, where
            page.screenshot(path=screenshots / f"{kind}.{locale}.png", full_page=True)
            checked += 1
    assert checked == len(SAMPLES) * (1 + len(SHIPPED_LOCALES))
