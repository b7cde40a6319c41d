"""Sample data for every kind of mail: previews and template tests render these."""

from domain.vocabulary import RULES, Purpose


def _minutes(purpose: Purpose) -> int:
    return int(RULES[purpose].default_ttl.total_seconds() // 60)


#: Per kind: the context a real mail would have (without the app's branding).
SAMPLES = {
    "signup": {"name": "Ada", "code": "123456", "ttl_minutes": _minutes(Purpose.SIGNUP)},
    "login": {"name": "Ada", "code": "654321", "ttl_minutes": _minutes(Purpose.LOGIN)},
    "email_change": {
        "name": "Ada",
        "code": "246810",
        "ttl_minutes": _minutes(Purpose.EMAIL_CHANGE),
    },
    "email_change_notice": {"name": "Ada", "new_email_masked": "a***@example.org"},
    "email_changed": {"name": "Ada", "new_email_masked": "a***@example.org"},
    "password_reset": {"name": "Ada", "ttl_minutes": _minutes(Purpose.PASSWORD_RESET)},
    "password_reset_unknown": {"name": None},
    "password_changed": {"name": "Ada"},
    "invite": {
        "name": "Grace",
        "inviter_name": "Ada",
        "workspace_name": "Analytical Engines",
        "role": "editor",
        "existing_user": False,
        "ttl_days": RULES[Purpose.INVITE].default_ttl.days,
    },
}

#: Kinds whose mail carries a link: one per purpose, named after it.
LINKED = frozenset(Purpose)

#: The link previews show (never a real token).
SAMPLE_LINK = "https://app.example.com/verify?token=sample-token-not-valid"


def sample_context(kind: str) -> dict:
    context = dict(SAMPLES[kind])
    if kind in LINKED:
        context["link"] = SAMPLE_LINK
    return context
