"""The transport registry and the settings check built on it: no server, no network."""

import subprocess
import sys

import pytest

from domain.errors import ConfigError, TransientError
from tests.imports import graph
from workers.settings import SETTINGS_DOC, load_settings
from workers.transports import registry
from workers.transports.registry import BACKENDS, make_backend

PREFIX = "workers.transports"

#: Everything each transport requires, set (no REDIS_URL: the embedded defaults).
COMPLETE = {
    "file": {},
    "smtp": {"MAILROOM_SMTP_HOST": "smtp.example.com"},
    "ses": {"MAILROOM_SES_REGION": "eu-west-1"},
    "gmail": {
        "MAILROOM_GMAIL_USER": "sender@gmail.example.com",
        "MAILROOM_GMAIL_CLIENT_ID": "client-1",
        "MAILROOM_GMAIL_CLIENT_SECRET": "client-secret-1234",
        "MAILROOM_GMAIL_REFRESH_TOKEN": "refresh-1",
    },
}


def settings_for(transport: str, **extra: str):
    return load_settings({"MAILROOM_TRANSPORT": transport, **COMPLETE[transport], **extra})


def test_the_registry_lists_exactly_file_smtp_ses_and_gmail():
    assert list(BACKENDS) == ["file", "smtp", "ses", "gmail"]
    assert registry.choices() == "file, smtp, ses or gmail"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_backend_declares_what_it_needs(name):
    backend = BACKENDS[name]
    assert name == backend.NAME
    assert isinstance(backend.HINT, str) and backend.HINT.strip()
    assert isinstance(backend.REQUIRED, tuple)
    assert set(backend.REQUIRED) <= set(SETTINGS_DOC)  # real environment names
    assert callable(backend.check) and callable(backend.from_settings)


@pytest.mark.parametrize("value", ["nope", "smtp,nope", "smtp,smtp"])
def test_an_unknown_or_repeated_transport_in_the_settings_names_MAILROOM_TRANSPORT(value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"MAILROOM_TRANSPORT": value, **COMPLETE["smtp"]})
    assert caught.value.setting == "MAILROOM_TRANSPORT"
    assert caught.value.problem == (
        "must list file, smtp, ses or gmail, each at most once (e.g. `ses,smtp`)"
    )


def test_an_unknown_transport_in_make_backend_names_MAILROOM_TRANSPORT():
    with pytest.raises(ConfigError) as caught:
        make_backend("nope", settings_for("file"))
    assert caught.value.setting == "MAILROOM_TRANSPORT"
    assert "'nope'" in caught.value.problem and "file, smtp, ses or gmail" in caught.value.problem


@pytest.mark.parametrize(
    ("transport", "setting"),
    [
        ("smtp", "MAILROOM_SMTP_HOST"),
        ("gmail", "MAILROOM_GMAIL_USER"),
        ("gmail", "MAILROOM_GMAIL_CLIENT_ID"),
        ("gmail", "MAILROOM_GMAIL_CLIENT_SECRET"),
        ("gmail", "MAILROOM_GMAIL_REFRESH_TOKEN"),
    ],
)
def test_a_missing_required_setting_is_named(transport, setting):
    assert setting in BACKENDS[transport].REQUIRED
    environ = {"MAILROOM_TRANSPORT": transport, **COMPLETE[transport], setting: ""}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert str(caught.value) == f"{setting}: is required when MAILROOM_TRANSPORT uses {transport}"


def test_only_smtp_and_gmail_require_settings():
    assert {name: b.REQUIRED for name, b in BACKENDS.items() if b.REQUIRED} == {
        "smtp": ("MAILROOM_SMTP_HOST",),
        "gmail": tuple(COMPLETE["gmail"]),
    }


def test_each_backend_checks_its_own_settings(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        settings_for("smtp", MAILROOM_SMTP_USERNAME="mailroom")
    assert str(caught.value) == ("MAILROOM_SMTP_PASSWORD: is required with MAILROOM_SMTP_USERNAME")

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings({"MAILROOM_TRANSPORT": "ses"})
    assert str(caught.value) == "MAILROOM_SES_REGION: is required with ses (or set AWS_REGION)"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert load_settings({"MAILROOM_TRANSPORT": "ses"}).ses_region is None

    missing = tmp_path / "absent.pem"
    for transport in ("smtp", "gmail"):
        with pytest.raises(ConfigError) as caught:
            settings_for(transport, MAILROOM_SMTP_CA_FILE=str(missing))
        assert str(caught.value) == f"MAILROOM_SMTP_CA_FILE: {missing} is not a readable file"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_each_backend_is_built_from_settings_without_connecting(name, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    transport = make_backend(name, settings_for(name))
    try:
        assert transport.name == name
    finally:
        transport.close()


def test_the_smtp_port_defaults_by_security_mode():
    assert settings_for("smtp", MAILROOM_SMTP_SECURITY="tls").effective_smtp_port == 465
    assert settings_for("smtp").effective_smtp_port == 587


def test_send_test_hints_come_from_the_backend():
    from workers.cli.operations import _hint

    for name, backend in BACKENDS.items():
        assert _hint(name, TransientError("down")) == backend.HINT


def test_importing_the_settings_loads_no_client_library():
    probe = (
        "import sys, workers.settings; print(sorted(m for m in ('boto3', 'botocore', "
        "'google.auth', 'structlog', 'workers.transports.chain') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_imports_run_one_way_from_registry_to_backends_to_base():
    edges = {name: targets for name, targets in graph().items() if name.startswith(PREFIX)}
    for name, targets in edges.items():
        if name not in (f"{PREFIX}.registry", PREFIX):
            # Not the registry, nor the package (whose __init__ imports the registry).
            assert {f"{PREFIX}.registry", PREFIX} & targets == set(), name
        assert "workers.settings" not in targets, name  # the settings import the registry
    assert {t for t in edges[f"{PREFIX}.base"] if t.startswith("workers")} == set()
