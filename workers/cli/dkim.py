"""`mailroom dkim keygen`: a DKIM key for an app, and the DNS record that publishes it."""

from pathlib import Path

import click

from workers.cli.base import Failure, cli, current_settings, echo_json


@cli.group()
def dkim() -> None:
    """DKIM keys that sign each app's mail on plain SMTP relays."""


@dkim.command("keygen")
@click.option("--app", "app_id", required=True, help="The app whose mail the key signs.")
@click.option(
    "--selector",
    help="Selector to publish it under. Default: the app's in the apps file, else `mailroom` "
    "(`mailroom-ed25519` with --ed25519).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key. Default: the app's key_file (ed25519_key_file) "
    "in the apps file.",
)
@click.option("--ed25519", is_flag=True, help="An Ed25519 key (the optional second signature).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keygen(app_id: str, selector: str | None, out: Path | None, ed25519: bool, as_json: bool):
    """Write a new private key (RSA-2048 unless --ed25519), readable by its owner
    only, and print the DNS TXT record to publish for it.

    Never replaces a file.  Exit 0 written, 1 the file exists or cannot be
    written, 2 usage error, 3 configuration error.
    """
    from domain.dkim import DEFAULT_SELECTORS, ED25519, RSA, record_name, record_value
    from workers.dkim_config import DNS_NAME_RULE, default_domain, is_dns_name
    from workers.dkim_keys import RSA_BITS, new_key, public_key_text, write_key

    if selector is not None and not is_dns_name(selector):
        raise click.BadParameter(DNS_NAME_RULE, param_hint="'--selector'")
    kind = ED25519 if ed25519 else RSA
    app = _app(app_id)
    domain = app.dkim.domain if app.dkim else default_domain(app.from_address)
    # The key of this kind as the app's [dkim] table names it (its file unread).
    named = next((key for key in app.dkim.keys if key.kind == kind), None) if app.dkim else None
    selector = selector or (named.selector if named else DEFAULT_SELECTORS[kind])
    if out is None:
        if named is None:
            table = "ed25519_key_file" if ed25519 else "key_file"
            raise click.UsageError(f"give --out: apps.{app_id}.dkim.{table} is not set")
        out = Path(named.file)
    private = new_key(kind)
    try:
        write_key(out, private)
    except FileExistsError:
        raise Failure(
            f"{out} exists: a key is never replaced (give another --out, and a new --selector "
            "to rotate keys)"
        ) from None
    except OSError as exc:
        raise Failure(f"cannot write {out}: {exc.strerror or exc}") from None
    name = record_name(selector, domain)
    value = record_value(kind, public_key_text(kind, private))
    in_use = named is not None and named.selector == selector and _same(Path(named.file), out)
    if as_json:
        echo_json(
            {"app": app_id, "algorithm": "ed25519" if ed25519 else f"rsa-{RSA_BITS}",
             "key_file": str(out.absolute()), "selector": selector, "domain": domain,
             "record": {"name": name, "type": "TXT", "value": value}, "configured": in_use}
        )  # fmt: skip
        return
    algorithm = "Ed25519" if ed25519 else f"RSA-{RSA_BITS}"
    click.echo(f"Wrote an {algorithm} key to {out} (mode 0600).")
    click.echo("Publish this DNS TXT record:")
    click.echo(f"  name:  {name}")
    click.echo(f"  value: {value}")
    if not in_use:
        prefix = "ed25519_" if ed25519 else ""
        click.echo(f"Then name the key in the apps file, in [apps.{app_id}.dkim]:")
        click.echo(f'  {prefix}key_file = "{out.absolute()}"')
        click.echo(f'  {prefix}selector = "{selector}"')


def _app(app_id: str):
    """The app called ``app_id``, its key files unread (this command makes them)."""
    from domain.errors import ConfigError
    from workers.apps import load_directory

    settings = current_settings()
    if settings.apps_file is None:
        raise ConfigError(
            "MAILROOM_APPS_FILE", "is not set: DKIM keys are named per app in the apps file"
        )
    directory = load_directory(settings, read_keys=False)
    if app_id not in directory.apps:
        raise click.BadParameter(
            f"no app {app_id!r} in {settings.apps_file} "
            f"(its apps: {', '.join(sorted(directory.apps)) or 'none'})",
            param_hint="'--app'",
        )
    return directory.apps[app_id]


def _same(a: Path, b: Path) -> bool:
    return a.absolute().resolve() == b.absolute().resolve()
