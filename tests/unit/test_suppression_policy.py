"""The suppression policy and VERP return paths: pure functions."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain import verp
from domain.suppression import PRECEDENCE, Suppression, after_feedback, blocking
from domain.vocabulary import Feedback, Suppressed

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
SOFT, DELIVERED = Feedback.SOFT_BOUNCED, Feedback.DELIVERED


def earned(feedback, recent=(), days=30, limit=3):
    return after_feedback(
        feedback, app="notes", now=NOW, bounce_days=days, soft_limit=limit, recent=recent
    )


def test_a_hard_bounce_suppresses_for_every_app_for_the_set_days():
    assert earned(Feedback.BOUNCED) == Suppression("*", "bounced", NOW + timedelta(days=30))
    assert earned(Feedback.BOUNCED, days=0).expires_at is None


def test_a_complaint_suppresses_for_its_app_until_lifted():
    assert earned(Feedback.COMPLAINED) == Suppression("notes", "complained", None)


@pytest.mark.parametrize(
    ("recent", "suppressed"),
    [
        ([SOFT, SOFT, SOFT], True),
        ([SOFT, SOFT], False),  # not yet the limit
        ([SOFT, DELIVERED, SOFT, SOFT], False),  # a delivery between
        ([SOFT, SOFT, SOFT, DELIVERED], True),  # older than the streak: irrelevant
    ],
)
def test_transient_bounces_suppress_only_in_a_row(recent, suppressed):
    assert (earned(SOFT, recent) is not None) is suppressed
    assert earned(SOFT, recent, limit=0) is None
    assert earned(DELIVERED, recent) is None


def test_what_each_suppression_stops():
    rank = {reason: PRECEDENCE.index(reason) for reason in PRECEDENCE}
    assert blocking(None, kind="signup") is None
    assert blocking(rank[Suppressed.BOUNCED], kind="password_reset") == "bounced"
    assert blocking(rank[Suppressed.MANUAL], kind="password_changed") == "manual"
    assert blocking(rank[Suppressed.COMPLAINED], kind="login") == "complained"
    for kind in ("password_reset", "password_changed", "email_changed", "email_change_notice"):
        assert blocking(rank[Suppressed.COMPLAINED], kind=kind) is None


def test_a_return_path_names_its_mail_only_under_its_key_and_domain():
    key, email_id = verp.key_for(b"p" * 32), uuid.uuid4()
    address = verp.return_path(email_id, key, "bounces.example.com")
    local, _, domain = address.partition("@")
    assert domain == "bounces.example.com" and len(local) <= 64
    assert verp.email_id_of(address.upper(), [key], "bounces.example.com") == email_id
    assert verp.email_id_of(f"<{address}>", [b"old", key], "BOUNCES.example.com") == email_id
    assert verp.email_id_of(address, [verp.key_for(b"q" * 32)], "bounces.example.com") is None
    assert verp.email_id_of(address, [key], "other.example.com") is None
    # Another mail's id under the same MAC (one character of the id changed).
    at = len(verp.PREFIX) + 5
    forged = local[:at] + ("a" if local[at] != "a" else "b") + local[at + 1 :] + "@" + domain
    assert verp.email_id_of(forged, [key], "bounces.example.com") is None
    for junk in ("bounces+@bounces.example.com", "bounces+!!!@bounces.example.com", "x"):
        assert verp.email_id_of(junk, [key], "bounces.example.com") is None
