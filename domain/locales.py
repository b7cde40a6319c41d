"""Choosing the language of a mail.

The event's locale, then its language alone, then the app's default locale
(the same way), then English: ``zh-TW -> zh -> en``, ``fr-CA -> fr -> en``.  A
language alone matches the catalog shipped for it (``zh`` -> ``zh_CN``).
"""

import re
from collections.abc import Iterable

#: The language templates are written in; it needs no catalog.
SOURCE_LOCALE = "en"

#: Catalogs shipped in templates/locale (besides the source language).
SHIPPED_LOCALES = ("zh_CN", "es", "fr")

_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?")


def normalize(tag: str | None) -> str | None:
    """``zh-tw`` -> ``zh_TW``; ``zh-Hant-TW`` -> ``zh_TW``; nonsense -> None."""
    match = _TAG.match(tag or "")
    if not match:
        return None
    language, _script, region = match.groups()
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def candidates(tag: str | None) -> list[str]:
    locale = normalize(tag)
    if locale is None:
        return []
    language = locale.partition("_")[0]
    return [locale] if locale == language else [locale, language]


def resolve(requested: str | None, available: Iterable[str], app_default: str | None = None) -> str:
    """The best available locale for a mail (always one: English at worst)."""
    available = list(dict.fromkeys([SOURCE_LOCALE, *available]))
    by_language: dict[str, str] = {}
    for locale in available:
        by_language.setdefault(locale.partition("_")[0], locale)
    for tag in (requested, app_default):
        for candidate in candidates(tag):
            if candidate in available:
                return candidate
            if "_" not in candidate and candidate in by_language:
                return by_language[candidate]
    return SOURCE_LOCALE


def html_lang(locale: str) -> str:
    """``zh_CN`` -> ``zh-CN`` (BCP 47, for ``<html lang>``)."""
    return locale.replace("_", "-")
