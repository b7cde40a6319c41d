"""Auth-mail headers and DKIM: what we sign, verified by dkimpy (an implementation
not ours) against the DNS records `mailroom dkim keygen` prints, via a stub lookup."""

import re
import shutil
import subprocess
from datetime import UTC, datetime
from email.message import Message

import dkim as dkimpy
import pytest

from domain.dkim import ED25519, RSA, record_name, record_value
from domain.errors import ConfigError
from domain.messages import as_bytes, build_message, message_id_for
from workers.apps import load_directory
from workers.dkim import signed
from workers.dkim_keys import new_key, public_key_text, write_key
from workers.settings import load_settings

SENDER = "no-reply@notes.example.com"
APPS = """
[apps.notes]
from = "Notes <no-reply@notes.example.com>"
public_base_url = "https://notes.example.com"

[apps.notes.dkim]
key_file = "keys/notes.pem"
ed25519_key_file = "keys/notes.ed25519.pem"
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key files for the apps file above, and the DNS records that publish them."""
    directory = tmp_path_factory.mktemp("dkim")
    records = {}
    for kind, name, selector in ((RSA, "notes.pem", "mailroom"),
                                 (ED25519, "notes.ed25519.pem", "mailroom-ed25519")):  # fmt: skip
        private = new_key(kind)
        write_key(directory / "keys" / name, private)
        records[record_name(selector, "notes.example.com")] = record_value(
            kind, public_key_text(kind, private)
        )
    return directory, records


def apps_dir(keys, text=APPS):
    directory, _ = keys
    (directory / "apps.toml").write_text(text)
    return directory


def load(directory, **kw):
    settings = load_settings(
        {"MAILROOM_STATE_DIR": str(directory / "state"),
         "MAILROOM_APPS_FILE": str(directory / "apps.toml")}
    )  # fmt: skip
    return load_directory(settings, **kw)


def dns(records):
    """dkimpy's lookup, answered from ``records`` (name -> TXT value)."""

    def lookup(name: bytes, timeout=5):
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value else None

    return lookup


def verdicts(data: bytes, records) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature, top down."""
    count = len(re.findall(rb"^DKIM-Signature:", data, flags=re.MULTILINE | re.IGNORECASE))
    return [_verifies(data, i, records) for i in range(count)]


def _verifies(data: bytes, index: int, records) -> bool:
    try:
        return dkimpy.DKIM(data).verify(idx=index, dnsfunc=dns(records))
    except dkimpy.DKIMException:  # a body hash mismatch is raised, not returned
        return False


def mail(dkim=None, recipient="ada@example.com", **overrides):
    fields = dict(
        sender=SENDER, sender_name="Notes", recipient=recipient,
        subject="Your Notes verification code", text="Your code is 123456.\n",
        html="<p>Your code is <b>123456</b>.</p>",
        message_id=message_id_for(SENDER, key="0b5e-email-id.mailroom"),
        date=datetime(2026, 11, 22, 10, 0, tzinfo=UTC), kind="signup", app="notes", dkim=dkim,
    )  # fmt: skip
    return build_message(**{**fields, **overrides})


# ---------------------------------------------------------------- the headers


def test_auth_mail_has_exactly_the_headers_a_demanding_receiver_expects():
    msg = mail()
    assert sorted(msg.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Entity-Ref-ID",
         "Feedback-ID", "MIME-Version", "Content-Type"]
    )  # fmt: skip
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Feedback-ID"] == "signup:notes:mailroom:notes.example.com"
    # One email, one value (every attempt at it); another email, another value.
    assert msg["X-Entity-Ref-ID"] == "0b5e-email-id.mailroom"
    again = mail(message_id=message_id_for(SENDER, key="7f3a-another.mailroom"))
    assert again["X-Entity-Ref-ID"] == "7f3a-another.mailroom"
    fresh = [mail(message_id=message_id_for(SENDER))["X-Entity-Ref-ID"] for _ in range(2)]
    assert fresh[0] != fresh[1]


def test_mail_of_no_kind_has_no_feedback_id():
    msg = mail(kind=None, app=None)
    assert "Feedback-ID" not in msg and "X-Entity-Ref-ID" in msg


# ---------------------------------------------------------------- signing


def test_rsa_and_ed25519_signatures_verify_against_the_published_records(keys):
    app = load(apps_dir(keys)).apps["notes"]
    data = signed(mail(app.dkim), as_bytes(mail(app.dkim)))
    assert verdicts(data, keys[1]) == [True, True]
    first, second = (dkimpy.DKIM(data) for _ in range(2))
    first.verify(idx=0, dnsfunc=dns(keys[1]))
    second.verify(idx=1, dnsfunc=dns(keys[1]))
    rsa, ed = first.signature_fields, second.signature_fields
    assert (rsa[b"a"], rsa[b"s"], rsa[b"d"]) == (b"rsa-sha256", b"mailroom", b"notes.example.com")
    assert (ed[b"a"], ed[b"s"]) == (b"ed25519-sha256", b"mailroom-ed25519")
    assert rsa[b"c"] == b"relaxed/relaxed"
    # Each header we set is signed once more than it appears: none can be added.
    signed_names = [name.strip() for name in rsa[b"h"].decode().split(":")]
    assert signed_names == [
        name for name in ("from", "to", "subject", "date", "message-id", "mime-version",
                          "content-type", "auto-submitted", "x-entity-ref-id", "feedback-id")
        for _ in range(2)
    ]  # fmt: skip
    head = data.partition(b"\r\n\r\n")[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def swap(old: bytes, new: bytes):
    def change(data: bytes) -> bytes:
        assert old in data
        return data.replace(old, new, 1)

    return change


@pytest.mark.parametrize(
    "tamper",
    [
        swap(b"Subject: Your Notes verification code", b"Subject: Your Notes verification cod3"),
        swap(b"Your code is 123456.", b"Your code is 654321."),
        swap(b"Feedback-ID: signup:notes", b"Feedback-ID: login:notes"),
        swap(b"X-Entity-Ref-ID: 0b5e", b"X-Entity-Ref-ID: 1b5e"),
        swap(b"Auto-Submitted: auto-generated\r\n", b""),
        # Added below ours: a second From, To or Subject is what oversigning stops.
        swap(b"\r\n\r\n", b"\r\nFrom: Notes <no-reply@evil.example>\r\n\r\n"),
        swap(b"\r\n\r\n", b"\r\nSubject: Urgent\r\n\r\n"),
    ],
    ids=["subject", "body", "feedback-id", "entity-ref", "auto-submitted", "from", "subject2"],
)
def test_a_changed_signed_header_or_body_fails_both_signatures(keys, tamper):
    app = load(apps_dir(keys)).apps["notes"]
    data = signed(mail(app.dkim), as_bytes(mail(app.dkim)))
    assert verdicts(tamper(data), keys[1]) == [False, False]


def test_what_relays_do_on_the_way_keeps_both_signatures(keys):
    app = load(apps_dir(keys)).apps["notes"]
    data = signed(mail(app.dkim), as_bytes(mail(app.dkim)))
    relayed = (
        b"Received: from mailer.notes.example by mx.example.com with ESMTPS id 4Zb3\r\n"
        b"\tfor <ada@example.com>; Sun, 22 Nov 2026 10:00:01 +0000\r\n"
        + data.replace(b"Subject: Your Notes", b"Subject:  Your\r\n Notes", 1)  # refolded
    )
    assert verdicts(relayed, keys[1]) == [True, True]
    assert verdicts(relayed.replace(b"\r\n", b"\n"), keys[1]) == [True, True]  # a Maildir's LF


def test_an_internationalized_recipient_over_smtputf8_is_signed_as_sent(keys):
    app = load(apps_dir(keys)).apps["notes"]
    msg = mail(app.dkim, recipient="jürgen@exämple.org", subject="Ihr Notes-Bestätigungscode")
    data = signed(msg, as_bytes(msg, smtputf8=True))
    assert "To: jürgen@exämple.org".encode() in data
    assert verdicts(data, keys[1]) == [True, True]


def test_mail_of_an_app_without_keys_goes_out_unchanged():
    data = as_bytes(mail())
    assert signed(mail(), data) is data
    assert signed(Message(), b"Subject: x\r\n\r\nbody\r\n") == b"Subject: x\r\n\r\nbody\r\n"


def test_an_ed25519_key_in_dkimpys_base64_form_signs_too(keys, tmp_path):
    import base64

    from cryptography.hazmat.primitives import serialization

    private = new_key(ED25519)
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    (tmp_path / "ed.key").write_bytes(base64.b64encode(raw) + b"\n")
    shutil.copy(keys[0] / "keys" / "notes.pem", tmp_path / "rsa.pem")
    (tmp_path / "apps.toml").write_text(
        APPS.replace("keys/notes.pem", "rsa.pem").replace("keys/notes.ed25519.pem", "ed.key")
    )
    app = load(tmp_path).apps["notes"]
    records = {**keys[1], "mailroom-ed25519._domainkey.notes.example.com": record_value(
        ED25519, public_key_text(ED25519, private))}  # fmt: skip
    assert verdicts(signed(mail(app.dkim), as_bytes(mail(app.dkim))), records) == [True, True]


# ---------------------------------------------------------------- start-up checks


def _openssl_rsa_512(path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a 512-bit key (cryptography refuses to)")
    subprocess.run(["openssl", "genrsa", "-out", str(path), "512"], check=True,
                   capture_output=True)  # fmt: skip


@pytest.mark.parametrize(
    ("prepare", "error"),
    [
        (lambda d: (d / "keys" / "notes.pem").unlink(),
         "apps.notes.dkim.key_file: {d}/keys/notes.pem does not exist "
         "(`mailroom dkim keygen` makes one)"),
        (lambda d: ((d / "keys" / "notes.pem").unlink(), (d / "keys" / "notes.pem").mkdir()),
         "apps.notes.dkim.key_file: {d}/keys/notes.pem cannot be read: Is a directory"),
        (lambda d: (d / "keys" / "notes.pem").write_text("not a key\n"),
         "apps.notes.dkim.key_file: {d}/keys/notes.pem is not an RSA private key in PEM"),
        (lambda d: shutil.copy(d / "keys" / "notes.ed25519.pem", d / "keys" / "notes.pem"),
         "apps.notes.dkim.key_file: {d}/keys/notes.pem is not an RSA private key"),
        (lambda d: shutil.copy(d / "keys" / "notes.pem", d / "keys" / "notes.ed25519.pem"),
         "apps.notes.dkim.ed25519_key_file: {d}/keys/notes.ed25519.pem is not an Ed25519 "
         "private key"),
        (lambda d: (d / "keys" / "notes.ed25519.pem").write_text("c2hvcnQ=\n"),
         "apps.notes.dkim.ed25519_key_file: {d}/keys/notes.ed25519.pem is not an Ed25519 "
         "private key in PEM or base64"),
        (lambda d: _openssl_rsa_512(d / "keys" / "notes.pem"),
         "apps.notes.dkim.key_file: {d}/keys/notes.pem is a 512-bit RSA key: DKIM needs at "
         "least 1024 bits (2048 advised)"),
    ],
    ids=["missing", "unreadable", "garbage", "ed25519-as-rsa", "rsa-as-ed25519", "short-base64",
         "rsa-512"],
)  # fmt: skip
def test_a_key_file_mailroom_cannot_sign_with_stops_start_up_in_one_line(
    keys, tmp_path, prepare, error
):
    shutil.copytree(keys[0] / "keys", tmp_path / "keys")
    (tmp_path / "apps.toml").write_text(APPS)
    prepare(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert str(caught.value) == "MAILROOM_APPS_FILE: " + error.format(d=tmp_path)


def test_an_encrypted_key_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "keys").mkdir()
    pem = new_key(ED25519).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "keys" / "notes.pem").write_bytes(pem)
    (tmp_path / "apps.toml").write_text(APPS)
    with pytest.raises(ConfigError, match=r"key_file: .* is encrypted: give mailroom an unencr"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('key_file = "k.pem"\ndomain = "example.org"',
         "apps.notes.dkim.domain: example.org does not align with the From domain "
         "notes.example.com (it must be that domain, a parent or a subdomain of it, for DMARC "
         "to count it)"),
        ('key_file = "k.pem"\nselector = "bad selector"',
         "apps.notes.dkim.selector: must be a DNS name: labels of letters, digits and inner "
         "hyphens"),
        ('key_file = "k.pem"\ned25519_key_file = "e.pem"\ned25519_selector = "mailroom"',
         "apps.notes.dkim.ed25519_selector: must differ from the RSA key's selector"),
        ('selector = "s1"', "apps.notes.dkim.key_file: Field required"),
        ('key_file = "k.pem"\nkey = "x"', "apps.notes.dkim.key: Extra inputs are not permitted"),
    ],
    ids=["misaligned", "selector", "same-selectors", "no-key-file", "unknown-key"],
)  # fmt: skip
def test_a_wrong_dkim_table_is_one_line_naming_the_key(tmp_path, table, error):
    (tmp_path / "apps.toml").write_text(APPS.split("[apps.notes.dkim]")[0]
                                        + f"[apps.notes.dkim]\n{table}\n")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, read_keys=False)
    assert str(caught.value) == "MAILROOM_APPS_FILE: " + error


def test_a_parent_domain_aligns_and_keys_stay_unread_when_asked(tmp_path):
    (tmp_path / "apps.toml").write_text(
        APPS.replace(
            'key_file = "keys/notes.pem"', 'key_file = "keys/notes.pem"\ndomain = "Example.com"'
        )  # fmt: skip
    )
    dkim = load(tmp_path, read_keys=False).apps["notes"].dkim  # no key file exists
    assert dkim.domain == "example.com"
    assert [(k.kind, k.selector, k.file, k.private) for k in dkim.keys] == [
        (RSA, "mailroom", str(tmp_path / "keys" / "notes.pem"), b""),
        (ED25519, "mailroom-ed25519", str(tmp_path / "keys" / "notes.ed25519.pem"), b""),
    ]


def test_a_loaded_key_is_never_shown(keys):
    app = load(apps_dir(keys)).apps["notes"]
    assert all(key.private for key in app.dkim.keys)
    assert "private" not in repr(app)
