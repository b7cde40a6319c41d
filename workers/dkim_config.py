"""An app's ``[apps.<id>.dkim]`` table in the apps file (MAILROOM_APPS_FILE):

    [apps.notes.dkim]
    key_file = "/etc/mailroom/dkim/notes.pem"      # RSA private key (PEM), required
    selector = "mailroom"                           # default: mailroom
    domain = "notes.example.com"                    # default: the From address's domain
    ed25519_key_file = "/etc/mailroom/dkim/notes.ed25519.pem"   # optional second signature
    ed25519_selector = "mailroom-ed25519"           # default: mailroom-ed25519

A relative key file is found beside the apps file.  Without the table an app's
mail goes unsigned by mailroom.
"""

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from domain.dkim import DEFAULT_SELECTORS, ED25519, RSA, Dkim, SigningKey, aligned
from domain.errors import ConfigError
from workers.dkim_keys import SETTING, read_key

#: A selector or a domain: DNS labels of letters, digits and inner hyphens.
_LABELS = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
#: Longest DNS name, in characters.
MAX_NAME_LENGTH = 253
#: The rule in words, for error messages.
DNS_NAME_RULE = "must be a DNS name: labels of letters, digits and inner hyphens"


class DkimEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_file: Path
    selector: str = DEFAULT_SELECTORS[RSA]
    domain: str | None = None
    ed25519_key_file: Path | None = None
    ed25519_selector: str = DEFAULT_SELECTORS[ED25519]

    @field_validator("selector", "domain", "ed25519_selector")
    @classmethod
    def _dns_name(cls, value):
        if value is not None and not is_dns_name(value):
            raise ValueError(DNS_NAME_RULE)
        return value


def is_dns_name(value: str) -> bool:
    return len(value) <= MAX_NAME_LENGTH and _LABELS.fullmatch(value) is not None


def dkim_for(
    where: str,
    entry: DkimEntry | None,
    sender: str,
    beside: Path | None,
    *,
    read_keys: bool = True,
) -> Dkim | None:
    """The keys that sign app ``where``'s mail from ``sender``; ``beside``: the apps
    file's directory.  ``read_keys=False`` leaves the files unread (for
    ``mailroom dkim keygen``, which makes them)."""
    if entry is None or beside is None:
        return None
    from_domain = sender.rpartition("@")[2]
    domain = entry.domain or default_domain(sender)
    if not aligned(domain, default_domain(sender)):
        raise ConfigError(
            SETTING,
            f"{where}.dkim.domain: {domain} does not align with the From domain {from_domain} "
            "(it must be that domain, a parent or a subdomain of it, for DMARC to count it)",
        )
    keys = [SigningKey(RSA, entry.selector, str(beside / entry.key_file), f"{where}.dkim.key_file")]
    if entry.ed25519_key_file is not None:
        if entry.ed25519_selector == entry.selector:
            raise ConfigError(
                SETTING, f"{where}.dkim.ed25519_selector: must differ from the RSA key's selector"
            )
        file = str(beside / entry.ed25519_key_file)
        source = f"{where}.dkim.ed25519_key_file"
        keys.append(SigningKey(ED25519, entry.ed25519_selector, file, source))
    if read_keys:
        keys = [read_key(key) for key in keys]
    return Dkim(domain=domain.lower(), keys=tuple(keys))


def default_domain(sender: str) -> str:
    """The ``d=`` of mail from ``sender`` unless its app names one: its domain, in ASCII."""
    domain = sender.rpartition("@")[2].lower()
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")
