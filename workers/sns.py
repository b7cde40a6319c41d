"""Trusting an Amazon SNS message: its topic, its certificate's host, its signature.

Checks run cheapest first, and nothing is fetched for a topic not allowed, so
a stranger cannot make mailroom fetch URLs of their choosing.  Certificates
are fetched with ``requests`` (which trusts ``REQUESTS_CA_BUNDLE`` when set)
and kept in memory by URL: SNS signs with the same one for months.
"""

import base64
import binascii
import threading
import time
from datetime import UTC, datetime

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from domain import sns
from domain.sns import Refused

#: Seconds a fetched certificate is trusted before it is fetched again.
CERT_TTL = 3600.0
#: Most certificates kept (SNS has one a region; more means someone is probing).
CERT_CACHE_SIZE = 32
#: Seconds a certificate fetch or a subscription confirmation may take.
HTTP_TIMEOUT = 5.0
#: Largest certificate taken, in bytes.
MAX_CERT = 16 * 1024

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class Unreachable(Exception):
    """SNS could not be reached (a certificate, a confirmation): worth a retry."""


class Certificates:
    """Signing keys by certificate URL, fetched once per ``CERT_TTL``."""

    def __init__(self, ttl: float = CERT_TTL, size: int = CERT_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._keys: dict[str, tuple[float, rsa.RSAPublicKey]] = {}
        self._lock = threading.Lock()

    def key(self, url: str) -> rsa.RSAPublicKey:
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = _fetch_key(url)
        with self._lock:
            for stale in [u for u, (until, _) in self._keys.items() if until <= now]:
                del self._keys[stale]
            while len(self._keys) >= self.size:
                del self._keys[next(iter(self._keys))]  # the oldest fetched
            self._keys[url] = (now + self.ttl, key)
        return key


def _fetch_key(url: str) -> rsa.RSAPublicKey:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise Unreachable(f"signing certificate: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise Unreachable(f"signing certificate: HTTP {response.status_code}")
    if len(response.content) > MAX_CERT:
        raise Refused("signing certificate too large")
    try:
        certificate = x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise Refused("signing certificate is not a PEM certificate") from None
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused("signing certificate expired or not yet valid")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("signing certificate has no RSA key")
    return key


def check_signature(message: dict[str, str], key: rsa.RSAPublicKey) -> None:
    """``message`` is signed by ``key`` as its ``SignatureVersion`` says."""
    algorithm = _HASHES[sns.hash_name(message)]()
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise Refused("Signature is not base64") from None
    try:
        key.verify(signature, sns.string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise Refused("signature does not match") from None


class Verifier:
    """The operator's trust: allowed topics, and the hosts SNS may be reached at."""

    def __init__(self, topics: frozenset[str], cert_hosts: str) -> None:
        self.topics = topics
        self.cert_hosts = cert_hosts
        self.certificates = Certificates()

    def verified(self, body: bytes) -> dict[str, str]:
        """The message in ``body``, once trusted; raises ``Refused`` or ``Unreachable``."""
        message = sns.parse(body)
        sns.check_topic(message, self.topics)
        sns.check_cert_url(message["SigningCertURL"], self.cert_hosts)
        check_signature(message, self.certificates.key(message["SigningCertURL"]))
        return message

    def confirm(self, message: dict[str, str]) -> None:
        """Confirm a subscription by visiting its ``SubscribeURL``, if on an allowed host."""
        url = message["SubscribeURL"]
        sns.check_url(url, self.cert_hosts, "SubscribeURL")
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise Unreachable(f"SubscribeURL: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise Unreachable(f"SubscribeURL: HTTP {response.status_code}")
