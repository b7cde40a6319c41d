"""Links land where the app says: real mail through the worker and SMTP, verified
through the API and the Verifier, and previews that link the same way."""

import pytest

from domain.samples import SAMPLE_TOKEN
from domain.tokens import api_key_digest
from tests.commands import run
from tests.conftest import make_event, reset
from tests.mail import link_in, token_in
from tests.servers import ApiServer
from workers.verification import Verifier

BILLING_KEY = "mrk_billing-key-from-config"

APPS = """
[apps.notes]
from = "Notes <no-reply@notes.example.com>"
public_base_url = "https://notes.example.com"

[apps.notes.links]
signup = "/auth?step=verify"

[apps.billing]
from = "Billing Pro <accounts@billing.example.org>"
public_base_url = "https://billing.example.org/app"
api_key_sha256 = ["{hash}"]
"""


@pytest.fixture
def links(tmp_path):
    """The apps file (notes moves its sign-up link) and a setting that moves every
    app's reset link unless the app says otherwise."""
    path = tmp_path / "apps.toml"
    path.write_text(APPS.replace("{hash}", api_key_digest(BILLING_KEY)))
    return {"MAILROOM_APPS_FILE": str(path), "MAILROOM_LINK_PATH_PASSWORD_RESET": "/account/reset"}


def without_token(link: str) -> str:
    """Everything of a link but its token's value."""
    head, separator, token = link.partition("token=")
    assert token and "&" not in token, link
    return head + separator


def test_a_link_from_the_apps_file_lands_there_and_verifies(make_mailroom, smtp_sink, links):
    mailroom = make_mailroom(**links)
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    [message] = smtp_sink.wait_for(1)

    link = link_in(message)
    assert without_token(link) == "https://notes.example.com/auth?step=verify&token="
    verifier = Verifier(mailroom.rt)
    token = token_in(message)
    # What the landing page does: peek on GET, consume when the user submits.
    assert verifier.peek_token("notes", "signup", token).email == "ada@example.com"
    assert verifier.consume_token("notes", "signup", token).email == "ada@example.com"


def test_a_link_moved_by_a_setting_lands_there_and_verifies_over_http(
    make_mailroom, smtp_sink, links
):
    mailroom = make_mailroom(**links)
    mailroom.publish({**reset(email="bob@example.com"), "source": "billing"})
    [message] = smtp_sink.wait_for(1)

    assert without_token(link_in(message)) == "https://billing.example.org/app/account/reset?token="
    server = ApiServer(mailroom.rt)
    try:
        body = {"purpose": "password_reset", "token": token_in(message)}
        used = server.call("POST", "/v1/tokens/consume", BILLING_KEY, json=body)
        assert used.status_code == 200, used.text
        assert (used.json()["email"], used.json()["user_id"]) == ("bob@example.com", "u1")
        again = server.call("POST", "/v1/tokens/consume", BILLING_KEY, json=body)
        assert (again.status_code, again.json()) == (400, {"error": "invalid"})
    finally:
        server.stop()


def test_a_preview_links_as_real_mail_does(make_mailroom, smtp_sink, env, links, tmp_path):
    mailroom = make_mailroom(**links)
    mailroom.publish(make_event(data={"email": "ada@example.com"}, source="notes"))
    mailroom.publish({**reset(email="bob@example.com"), "source": "billing"})
    real = {m["To"]: link_in(m) for m in smtp_sink.wait_for(2)}

    for app, kind, recipient in (("notes", "signup", "ada@example.com"),
                                 ("billing", "password_reset", "bob@example.com")):  # fmt: skip
        out = tmp_path / f"{app}.{kind}.txt"
        result = run({**env, **links}, "preview", kind, "--app", app, "--out", str(out))
        assert result.returncode == 0, result.stderr
        [previewed] = [w for w in out.read_text().split() if w.startswith("https://")]
        assert without_token(previewed) == without_token(real[recipient])
        assert previewed.endswith(f"token={SAMPLE_TOKEN}")
        # The HTML button and the visible link are the same URL.
        html = run({**env, **links}, "preview", kind, "--app", app)
        assert html.stdout.count(f'href="{previewed.replace("&", "&amp;")}"') == 2


def test_a_bad_link_setting_stops_every_command_with_one_line(env):
    result = run({**env, "MAILROOM_LINK_PATH_INVITE": "invite/accept"}, "preview", "invite")
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "mailroom: configuration error: MAILROOM_LINK_PATH_INVITE: must start with one / "
        "(a path below the public base URL)"
    )
