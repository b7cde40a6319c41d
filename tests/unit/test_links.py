"""Where links land (per purpose, per app, by setting), the product name mails show,
and what `config show` says is in force: pure code and settings, no server."""

import pytest

from domain.apps import App, default_link_paths, link_path_problem
from domain.errors import ConfigError
from domain.flows import link_for
from domain.samples import SAMPLE_TOKEN, sample_context
from domain.vocabulary import Purpose
from workers import embedded
from workers.apps import load_directory
from workers.settings import load_settings
from workers.settings_shown import effective

#: The landing pages every deployment served before paths were configurable (the
#: README's "Landing pages" table): changing one breaks every deployed app.
DEFAULT_PATHS = {
    Purpose.SIGNUP: "/verify-email",
    Purpose.LOGIN: "/login/verify",
    Purpose.EMAIL_CHANGE: "/verify-email-change",
    Purpose.PASSWORD_RESET: "/reset-password",
    Purpose.INVITE: "/invite/accept",
}


def notes(**fields) -> App:
    return App(id="notes", from_address="no-reply@notes.example.com", **fields)


def embedded_settings(tmp_path, **environ):
    return load_settings({"MAILROOM_STATE_DIR": str(tmp_path / ".mailroom"), **environ})


# ---------------------------------------------------------------- links


def test_the_default_paths_are_todays():
    assert default_link_paths() == DEFAULT_PATHS
    app = notes(base_url="https://notes.example.com")
    assert {p: link_for(app, p, "t") for p in Purpose} == {
        p: f"https://notes.example.com{path}?token=t" for p, path in DEFAULT_PATHS.items()
    }


def test_a_path_with_its_own_query_gets_the_token_appended():
    app = notes(
        base_url="https://billing.example.org/app/",
        link_paths={**DEFAULT_PATHS, Purpose.SIGNUP: "/auth?step=verify&from=mail"},
    )
    assert link_for(app, Purpose.SIGNUP, "a+b/c=") == (
        "https://billing.example.org/app/auth?step=verify&from=mail&token=a%2Bb%2Fc%3D"
    )
    assert (
        link_for(app, Purpose.LOGIN, "t") == "https://billing.example.org/app/login/verify?token=t"
    )


@pytest.mark.parametrize(
    "path", ["/", "/auth/verify", "/auth?step=verify", "/a/b%20c;v=1?x=1&y=/z", "/~ada/@me"]
)
def test_a_path_below_the_base_url_is_accepted(path):
    assert link_path_problem(path) is None


#: What a path outside URL characters, or with an empty query, is told.
NOT_URL = (
    "must be a URL path with an optional non-empty query, in URL characters "
    "(percent-encode any other)"
)
#: What a path that does not start below the base URL is told.
NOT_BELOW = "must start with one / (a path below the public base URL)"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("auth/verify", NOT_BELOW),
        ("https://evil.example/x", NOT_BELOW),
        ("//evil.example/x", NOT_BELOW),
        ("", NOT_BELOW),
        ("/#/verify", "must not have a fragment (#): the token is added to the query"),
        ("/" + "a" * 200, "must be at most 200 characters"),
        ("/vérifier", NOT_URL),
        ("/a b", NOT_URL),
        ("/auth?", NOT_URL),
        ("/100%", NOT_URL),
        ('/a"><script>', NOT_URL),
        ("/auth?token=x", "must not set token in its query (mailroom adds it)"),
        ("/auth?a=1&token", "must not set token in its query (mailroom adds it)"),
    ],
)
def test_a_path_that_would_break_the_link_is_refused_with_the_reason(path, problem):
    assert link_path_problem(path) == problem


def test_the_settings_move_a_purposes_link(tmp_path):
    settings = embedded_settings(tmp_path, MAILROOM_LINK_PATH_PASSWORD_RESET="/account?do=reset")
    app = load_directory(settings).default
    assert app.link_paths == {**DEFAULT_PATHS, Purpose.PASSWORD_RESET: "/account?do=reset"}
    assert link_for(app, Purpose.PASSWORD_RESET, "t") == (
        "http://localhost:8000/account?do=reset&token=t"
    )


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_bad_link_setting_stops_at_start_naming_it(tmp_path, purpose):
    setting = f"MAILROOM_LINK_PATH_{purpose.name}"
    with pytest.raises(ConfigError) as caught:
        embedded_settings(tmp_path, **{setting: "verify"})
    assert str(caught.value) == f"{setting}: {NOT_BELOW}"


APPS = """
[apps.notes]
public_base_url = "https://notes.example.com"

[apps.notes.links]
signup = "/auth/verify"
invite = "/join?via=mail"

[apps.billing]
public_base_url = "https://billing.example.org/app"
"""


def test_an_app_moves_its_links_and_the_settings_fill_in_the_rest(tmp_path):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    settings = embedded_settings(
        tmp_path, MAILROOM_APPS_FILE=str(apps_file), MAILROOM_LINK_PATH_LOGIN="/sign-in"
    )
    directory = load_directory(settings)
    assert directory.apps["notes"].link_paths == {
        **DEFAULT_PATHS,
        Purpose.SIGNUP: "/auth/verify",
        Purpose.INVITE: "/join?via=mail",
        Purpose.LOGIN: "/sign-in",
    }
    assert directory.apps["billing"].link_paths == {**DEFAULT_PATHS, Purpose.LOGIN: "/sign-in"}
    assert link_for(directory.apps["notes"], Purpose.INVITE, "t") == (
        "https://notes.example.com/join?via=mail&token=t"
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("invite = ", "invitation = "),
         "apps.notes.links.invitation: Extra inputs are not permitted"),
        (('"/auth/verify"', '"auth/verify"'), f"apps.notes.links.signup: {NOT_BELOW}"),
        (('"/join?via=mail"', '"/join?token=1"'),
         "apps.notes.links.invite: must not set token in its query (mailroom adds it)"),
        (('"https://notes.example.com"', '"https://notes.example.com/?x=1"'),
         "apps.notes.public_base_url: must have no query or fragment (links are built on it)"),
    ],
)  # fmt: skip
def test_a_bad_link_in_the_apps_file_is_one_line_naming_it(tmp_path, change, error):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_directory(embedded_settings(tmp_path, MAILROOM_APPS_FILE=str(apps_file)))
    assert str(caught.value) == f"MAILROOM_APPS_FILE: {error}"


def test_a_preview_links_as_real_mail_does_with_a_sample_token(tmp_path):
    settings = embedded_settings(
        tmp_path, MAILROOM_LINK_PATH_INVITE="/join?via=mail", MAILROOM_INVITE_TTL="3"
    )
    app = load_directory(settings).default
    context = sample_context("invite", app, settings.ttls)
    assert context["link"] == link_for(app, Purpose.INVITE, SAMPLE_TOKEN)
    assert context["link"] == "http://localhost:8000/join?via=mail&token=sample-token-not-valid"
    # The validity stated is the configured one, as in real mail.
    assert (context["ttl_days"], context["ttl_minutes"]) == (3, 3 * 24 * 60)
    assert "link" not in sample_context("password_changed", app, settings.ttls)


# ---------------------------------------------------------------- product name


def test_the_product_is_never_the_raw_source():
    named = notes(base_url="https://n.example", product_name="Notes", from_name="Team")
    assert named.product("cli") == "Notes"
    assert notes(base_url="https://n.example", from_name="Notes Team").product("cli") == (
        "Notes Team"
    )
    bare = notes(base_url="https://n.example")
    assert bare.product("cli") == "notes.example.com"
    assert bare.branding("cli")["product"] == "notes.example.com"


def test_without_a_product_name_the_one_app_names_its_sender(tmp_path):
    assert load_directory(embedded_settings(tmp_path)).default.product() == "Mailroom"
    settings = embedded_settings(tmp_path, MAILROOM_MAIL_FROM="no-reply@acme.io")
    assert load_directory(settings).default.product() == "acme.io"
    settings = embedded_settings(tmp_path, MAILROOM_PRODUCT_NAME="Acme Notes")
    assert load_directory(settings).default.product() == "Acme Notes"


# ---------------------------------------------------------------- config show


def shown(settings, environ=None) -> dict:
    return {row["setting"]: (row["value"], row["source"]) for row in effective(settings, environ)}


def test_config_show_prints_the_embedded_defaults_in_force(tmp_path):
    state = tmp_path / ".mailroom"
    rows = shown(embedded_settings(tmp_path), {})
    assert rows["MAILROOM_MAIL_FROM"] == ("Mailroom <no-reply@example.com>", "embedded default")
    assert rows["MAILROOM_PUBLIC_BASE_URL"] == ("http://localhost:8000", "embedded default")
    assert rows["MAILROOM_PRODUCT_NAME"] == ("Mailroom", "embedded default")
    assert rows["DATABASE_URL"] == (f"sqlite:///{state}/mailroom.db", "default")
    assert rows["MAILROOM_SMTP_PORT"] == ("587", "default")
    assert rows["MAILROOM_LINK_PATH_SIGNUP"] == ("/verify-email", "default")
    assert rows["MAILROOM_TOKEN_SECRET"] == (
        f"(generated on first use in {state}/token-secret)",
        "generated",
    )
    assert not (state / "token-secret").exists()  # looking did not generate it


def test_config_show_never_prints_the_generated_secret(tmp_path):
    state = tmp_path / ".mailroom"
    secret = embedded.token_secret(state)
    rows = effective(embedded_settings(tmp_path), {})
    [row] = [r for r in rows if r["setting"] == "MAILROOM_TOKEN_SECRET"]
    assert row == {
        "setting": "MAILROOM_TOKEN_SECRET",
        "value": f"**** (kept in {state}/token-secret)",
        "source": "generated",
    }
    printed = repr(rows)
    assert secret not in printed and secret[-4:] not in printed


def test_config_show_names_where_a_derived_value_comes_from(tmp_path):
    settings = embedded_settings(tmp_path, MAILROOM_MAIL_FROM="Acme <no-reply@acme.io>")
    rows = shown(settings, {"MAILROOM_MAIL_FROM": "x", "AWS_REGION": "eu-west-1"})
    assert rows["MAILROOM_MAIL_FROM"] == ("Acme <no-reply@acme.io>", "environment")
    assert rows["MAILROOM_PRODUCT_NAME"] == ("Acme", "sender")
    assert rows["MAILROOM_SES_REGION"] == ("eu-west-1", "AWS_REGION")
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(APPS)
    rows = shown(embedded_settings(tmp_path, MAILROOM_APPS_FILE=str(apps_file)), {})
    assert rows["MAILROOM_PRODUCT_NAME"] == (None, "each app's product_name, else its sender")
