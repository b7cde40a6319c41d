"""Rendering ``templates/<kind>/{subject.txt,body.txt,body.html}`` in a locale.

Texts are gettext messages (Jinja's i18n extension, catalogs in
``templates/locale/<locale>/LC_MESSAGES/messages.po`` read with Babel).  An
operator directory (MAILROOM_TEMPLATES_DIR) overrides any template or message,
for every app (``<dir>/<kind>/...``, ``<dir>/locale/...``) or for one
(``<dir>/<app>/<kind>/...``, ``<dir>/<app>/locale/...``).

HTML is autoescaped, text is not; an undefined variable is an error, never an
empty string.  One Jinja environment per (app, locale), each caching its
compiled templates.
"""

import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

from domain.errors import RenderError
from domain.locales import html_lang, resolve
from workers.shipped import shipped

#: The templates shipped with mailroom, beside the packages.
TEMPLATES_DIR = shipped("templates")

#: Where catalogs live below a templates directory.
LOCALE_DIR = "locale"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


def read_catalog(path: Path) -> Translations:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


class Renderer:
    def __init__(self, directory: Path = TEMPLATES_DIR, overrides: Path | None = None) -> None:
        self.directory = Path(directory)
        self.overrides = Path(overrides) if overrides else None
        self._environments: dict[tuple[str | None, str], Environment] = {}
        self._locales: dict[str | None, list[str]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lookup

    def _layers(self, app_id: str | None) -> list[Path]:
        """Template roots, most specific first: the app's overrides, everyone's, ours."""
        layers = []
        if self.overrides is not None:
            if app_id and (self.overrides / app_id).is_dir():
                layers.append(self.overrides / app_id)
            layers.append(self.overrides)
        layers.append(self.directory)
        return layers

    def locales(self, app_id: str | None = None) -> list[str]:
        """Every locale with a catalog for this app (besides the source language).

        Read from disk once per app: catalogs change with a deploy, not while
        a worker runs.
        """
        if app_id not in self._locales:
            found = []
            for layer in self._layers(app_id):
                root = layer / LOCALE_DIR
                if root.is_dir():
                    found += [p.name for p in sorted(root.iterdir()) if _catalog(p).is_file()]
            self._locales[app_id] = list(dict.fromkeys(found))
        return self._locales[app_id]

    def kinds(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if (p / "body.html").is_file())

    def _translations(self, app_id: str | None, locale: str):
        translations = None
        # Ours first, then everyone's overrides, then the app's: later ones win.
        for layer in reversed(self._layers(app_id)):
            path = _catalog(layer / LOCALE_DIR / locale)
            if not path.is_file():
                continue
            loaded = read_catalog(path)
            translations = loaded if translations is None else translations.merge(loaded)
        return translations or NullTranslations()

    def environment(self, app_id: str | None, locale: str) -> Environment:
        key = (app_id, locale)
        with self._lock:
            if key not in self._environments:
                loaders = [FileSystemLoader(str(layer)) for layer in self._layers(app_id)]
                environment = Environment(
                    loader=ChoiceLoader(loaders),
                    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
                    undefined=StrictUndefined,
                    lstrip_blocks=True,
                    auto_reload=False,
                    extensions=["jinja2.ext.i18n"],
                )
                environment.policies["ext.i18n.trimmed"] = True
                environment.install_gettext_translations(
                    self._translations(app_id, locale), newstyle=True
                )
                self._environments[key] = environment
            return self._environments[key]

    # ------------------------------------------------------------ rendering

    def resolve_locale(self, requested: str | None, app=None) -> str:
        app_id = app.id if app else None
        return resolve(requested, self.locales(app_id), app.default_locale if app else None)

    def render(self, kind: str, locale: str | None, context: dict, app=None) -> Rendered:
        resolved = self.resolve_locale(locale, app)
        environment = self.environment(app.id if app else None, resolved)
        values = {**context, "locale": resolved, "html_lang": html_lang(resolved)}
        try:
            subject = environment.get_template(f"{kind}/subject.txt").render(values)
            text = environment.get_template(f"{kind}/body.txt").render(values)
            html = environment.get_template(f"{kind}/body.html").render(values)
        except TemplateError as exc:
            raise RenderError(f"template {kind!r}: {type(exc).__name__}: {exc}") from None
        subject = " ".join(subject.split())
        if not subject:
            raise RenderError(f"template {kind!r}: the subject is empty")
        # Template tags leave blank lines behind; plain text keeps one at most.
        text = re.sub(r"\n[ \t]*(?:\n[ \t]*)+\n", "\n\n", text.strip()) + "\n"
        return Rendered(subject=subject, text=text, html=html, locale=resolved)


def _catalog(locale_dir: Path) -> Path:
    return locale_dir / "LC_MESSAGES" / "messages.po"
