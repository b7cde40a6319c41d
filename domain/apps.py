"""The apps one fleet of workers serves, known by the ``source`` of their events."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: What an app id (an event's ``source``) looks like.
APP_ID_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,63}"
#: The same rule in words, for error messages.
APP_ID_RULE = "an app id is a-z, 0-9, _ . - (at most 64)"


def is_app_id(value: str) -> bool:
    return re.fullmatch(APP_ID_PATTERN, value) is not None


@dataclass(frozen=True)
class App:
    id: str
    from_address: str
    base_url: str
    #: Shown in mails; None: the event's ``source``.
    product_name: str | None = None
    from_name: str | None = None
    support_email: str | None = None
    logo_url: str | None = None
    default_locale: str | None = None
    #: SHA-256 (hex) of the keys this app calls the verification API with.
    api_key_hashes: frozenset[str] = frozenset()

    def product(self, source: str) -> str:
        return self.product_name or source

    def branding(self, source: str) -> dict:
        """What every template may show about the app."""
        return {
            "product": self.product(source),
            "logo_url": self.logo_url,
            "support_email": self.support_email,
        }


@dataclass(frozen=True)
class Directory:
    apps: Mapping[str, App] = field(default_factory=dict)
    #: Serves sources that are not listed; None: such events are dead-lettered.
    default: App | None = None

    def for_source(self, source: str) -> App | None:
        return self.apps.get(source) or self.default

    def app_for_key(self, key_hash: str) -> str | None:
        for app in self.apps.values():
            if key_hash in app.api_key_hashes:
                return app.id
        return None
