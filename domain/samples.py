"""Sample data for every kind of mail: previews and template tests render these."""

from datetime import timedelta

from domain.apps import App
from domain.flows import link_for
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

#: The token in every sample link (never a real one).
SAMPLE_TOKEN = "sample-token-not-valid"  # noqa: S105 (a placeholder, not a secret)
#: The link of every linked kind when no app is given (template tests look for it).
SAMPLE_LINK = f"https://app.example.com/verify?token={SAMPLE_TOKEN}"


def sample_context(
    kind: str, app: App | None = None, ttls: dict[Purpose, timedelta] | None = None
) -> dict:
    """A kind's sample context.  With an app, its link is the one real mail would
    carry (same builder, the app's base URL and path); with ``ttls`` (the settings'),
    its validity is the one real mail would state."""
    context = dict(SAMPLES[kind])
    if kind in LINKED:
        purpose = Purpose(kind)
        context["link"] = SAMPLE_LINK if app is None else link_for(app, purpose, SAMPLE_TOKEN)
        if ttls is not None:
            # As delivery states it: in minutes, and in whole days for the long-lived.
            minutes = int(ttls[purpose].total_seconds() // 60)
            context.update(ttl_minutes=minutes, ttl_days=minutes // 1440)
    return context
