"""DKIM (RFC 6376): which keys sign an app's mail, and the DNS record that vouches for each.

Pure data.  ``workers.dkim_keys`` reads and makes the key files,
``workers.dkim`` computes the signatures over the bytes a transport sends.
"""

from dataclasses import dataclass, field

RSA = "rsa"
ED25519 = "ed25519"
#: The ``a=`` tag of a signature made with a key of each kind.
ALGORITHMS = {RSA: "rsa-sha256", ED25519: "ed25519-sha256"}
#: Selector a key gets unless the apps file or ``--selector`` names one.
DEFAULT_SELECTORS = {RSA: "mailroom", ED25519: "mailroom-ed25519"}

#: Header fields signed when present, each once more than it appears (RFC 6376
#: 8.15, "oversigning"): no relay or forger can add another without breaking
#: the signature.  What the reader sees, the MIME structure, and the headers
#: receivers judge auth mail by (``domain.messages``).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
    "X-Entity-Ref-ID",
    "Feedback-ID",
)


@dataclass(frozen=True)
class SigningKey:
    """One key: the selector its public half is published under, and its private half."""

    kind: str  # RSA or ED25519
    selector: str
    #: The key file's path.
    file: str
    #: Where the apps file names the file (``apps.notes.dkim.key_file``), for error lines.
    source: str
    #: The private key, PKCS#8 DER; empty until the file is read.  Never shown.
    private: bytes = field(default=b"", repr=False, compare=False)

    @property
    def algorithm(self) -> str:
        return ALGORITHMS[self.kind]


@dataclass(frozen=True)
class Dkim:
    """How an app's mail is signed: for ``domain`` (``d=``), with each key in turn."""

    domain: str
    #: The RSA key first, then an optional Ed25519 one (RFC 8463: both, for
    #: receivers that verify only one of them).
    keys: tuple[SigningKey, ...]


def record_name(selector: str, domain: str) -> str:
    """Where the public key is published: a TXT record at this name."""
    return f"{selector}._domainkey.{domain}"


def record_value(kind: str, public_key: str) -> str:
    """The TXT record's value; ``public_key`` in base64 (RFC 6376 3.6.1, RFC 8463)."""
    return f"v=DKIM1; k={kind}; p={public_key}"


def aligned(dkim_domain: str, from_domain: str) -> bool:
    """Whether a signature for ``dkim_domain`` plainly counts for DMARC (relaxed
    alignment) on mail from ``from_domain``: the same domain, or one a parent of
    the other.  (Siblings may align too, but telling needs the public suffix
    list; a typo in the domain is the likelier cause.)"""
    a, b = dkim_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b or a.endswith(f".{b}") or b.endswith(f".{a}")
