"""The apps one fleet of workers serves, known by the ``source`` of their events."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from domain.dkim import Dkim
from domain.vocabulary import RULES, Purpose
from domain.webhooks import Webhook

#: What an app id (an event's ``source``) looks like.
APP_ID_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,63}"
#: The same rule in words, for error messages.
APP_ID_RULE = "an app id is a-z, 0-9, _ . - (at most 64)"

#: Longest link path (its query included) an app may configure, in characters.
MAX_LINK_PATH_LENGTH = 200
#: One leading slash, then URL characters (RFC 3986), then at most one non-empty query.
_LINK_PATH = re.compile(
    r"/(?!/)[\w\-.~!$&'()*+,;=:@/%]*(?:\?[\w\-.~!$&'()*+,;=:@/?%]+)?", flags=re.ASCII
)
#: A ``%`` that does not start an escape (``%2F``).
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_app_id(value: str) -> bool:
    return re.fullmatch(APP_ID_PATTERN, value) is not None


def default_link_paths() -> dict[Purpose, str]:
    """Where each purpose's link lands unless an app or a setting says otherwise."""
    return {purpose: rules.link_path for purpose, rules in RULES.items()}


def link_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be where a link lands, in words; None if it can.

    A path may carry a query of its own (``/auth?step=verify``): the token is
    then added with ``&``.  A fragment may not, since the token would land in it.
    """
    if not path.startswith("/") or path.startswith("//"):
        return "must start with one / (a path below the public base URL)"
    if "#" in path:
        return "must not have a fragment (#): the token is added to the query"
    if len(path) > MAX_LINK_PATH_LENGTH:
        return f"must be at most {MAX_LINK_PATH_LENGTH} characters"
    if not _LINK_PATH.fullmatch(path) or _BARE_PERCENT.search(path):
        return (
            "must be a URL path with an optional non-empty query, in URL characters "
            "(percent-encode any other)"
        )
    if any(name == "token" for name, _ in parse_qsl(urlsplit(path).query, keep_blank_values=True)):
        return "must not set token in its query (mailroom adds it)"
    return None


@dataclass(frozen=True)
class App:
    id: str
    from_address: str
    base_url: str
    #: Shown in mails; None: the sender's display name, else its domain.
    product_name: str | None = None
    from_name: str | None = None
    support_email: str | None = None
    logo_url: str | None = None
    default_locale: str | None = None
    #: SHA-256 (hex) of the keys this app calls the verification API with.
    api_key_hashes: frozenset[str] = frozenset()
    #: Per purpose, where its link lands below ``base_url`` (``link_path_problem`` holds).
    link_paths: Mapping[Purpose, str] = field(default_factory=default_link_paths, hash=False)
    # --- DKIM ---
    #: The keys that sign its mail on plain relays (``smtp``, ``file``); None: unsigned.
    dkim: Dkim | None = field(default=None, hash=False)
    # --- webhooks ---
    #: Where its outcomes are POSTed, signed; None: it reads the stream itself.
    webhook: Webhook | None = field(default=None, hash=False)

    def product(self, source: str | None = None) -> str:
        """The name mails show.  Never the event's ``source`` (callers may still pass
        it): a raw id such as ``cli`` reads as a typo in a subject line."""
        return self.product_name or self.from_name or self.from_address.rpartition("@")[2]

    def branding(self, source: str | None = None) -> dict:
        """What every template may show about the app."""
        return {
            "product": self.product(),
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
