"""Sample data for every kind of mail: previews and template tests render these."""

#: Per kind: the context a real mail would have (without the app's branding).
SAMPLES = {
    "signup": {"name": "Ada", "code": "123456", "ttl_minutes": 5},
    "login": {"name": "Ada", "code": "654321", "ttl_minutes": 5},
    "email_change": {"name": "Ada", "code": "246810", "ttl_minutes": 5},
    "email_change_notice": {"name": "Ada", "new_email_masked": "a***@example.org"},
    "email_changed": {"name": "Ada", "new_email_masked": "a***@example.org"},
    "password_reset": {"name": "Ada", "ttl_minutes": 60},
    "password_reset_unknown": {"name": None},
    "password_changed": {"name": "Ada"},
    "invite": {
        "name": "Grace",
        "inviter_name": "Ada",
        "workspace_name": "Analytical Engines",
        "role": "editor",
        "existing_user": False,
        "ttl_days": 7,
    },
}

#: Kinds whose mail carries a link.
LINKED = frozenset({"signup", "login", "email_change", "password_reset", "invite"})

#: The link previews show (never a real token).
SAMPLE_LINK = "https://app.example.com/verify?token=sample-token-not-valid"


def sample_context(kind: str) -> dict:
    context = dict(SAMPLES[kind])
    if kind in LINKED:
        context["link"] = SAMPLE_LINK
    return context
