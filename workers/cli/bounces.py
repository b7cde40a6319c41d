"""`mailroom bounces serve|ingest`: bounces and complaints returned by plain
SMTP relays to each mail's VERP return path, taken in."""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from domain.errors import ConfigError
from workers.cli.base import EXIT_FAILED, build, cli, current_settings, echo_json, wait_for_signal

#: The Maildir flag of a message that has been read (``:2,S``).
SEEN = "S"
#: What separates a Maildir file's unique name from its flags.
INFO = ":2,"


@cli.group()
def bounces() -> None:
    """Take in the bounces and complaints plain SMTP relays return."""


def _settings():
    settings = current_settings()
    if not settings.bounce_domain:
        raise ConfigError(
            "MAILROOM_BOUNCE_DOMAIN", "is not set: no mail carries a return path to take in"
        )
    return settings


def _logging(settings) -> None:
    import logging

    from workers.logs import configure_logging

    # On stderr: stdout is the command's own output (``--json``).
    configure_logging(settings.log_format, settings.log_level, stream=sys.stderr)
    # aiosmtpd logs every command of every session at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@bounces.command("serve")
@click.option("--host", help="Interface to listen on. Default: MAILROOM_BOUNCES_HOST.")
@click.option("--port", type=click.IntRange(0, 65535), help="Default: MAILROOM_BOUNCES_PORT.")
@click.option(
    "--lmtp/--smtp",
    default=None,
    help="Speak LMTP (a local MTA's transport) or SMTP. Default: MAILROOM_BOUNCES_PROTOCOL.",
)
def serve(host: str | None, port: int | None, lmtp: bool | None) -> None:
    """Receive returned mail over SMTP or LMTP and record its bounces and complaints.

    Point the MX of MAILROOM_BOUNCE_DOMAIN, or a relay's transport map, here.
    Only the return paths mailroom made are accepted (550 for any other
    address); a message is answered 250 once recorded, 451 when the database
    is out of reach (the relay tries again).  SIGTERM or SIGINT stops it after
    the messages in hand.
    """
    from workers.bounce_server import BounceServer

    settings = _settings()
    _logging(settings)
    lmtp = settings.bounces_protocol == "lmtp" if lmtp is None else lmtp
    host = host or settings.bounces_host
    port = settings.bounces_port if port is None else port
    runtime = build(settings)
    server = BounceServer(runtime, host, port, lmtp=lmtp)
    try:
        try:
            server.start()
        except (OSError, RuntimeError) as exc:
            click.echo(f"mailroom: cannot listen on {host}:{port}: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        click.echo(
            f"mailroom bounces: {server.protocol} on {host}:{port} for "
            f"bounces+…@{settings.bounce_domain}. Ctrl-C to stop.",
            err=True,
        )
        wait_for_signal("mailroom bounces")
        server.stop()
    finally:
        runtime.close()


@dataclass
class Tally:
    messages: int = 0
    recorded: int = 0
    repeated: int = 0
    unmatched: int = 0
    #: Messages that held no report.
    not_reports: int = 0
    #: Files that could not be read or recorded: left where they are.
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "messages": self.messages,
            "recorded": self.recorded,
            "repeated": self.repeated,
            "unmatched": self.unmatched,
            "not_reports": self.not_reports,
            "failed": len(self.failed),
            "failed_files": self.failed,
        }


@bounces.command("ingest")
@click.argument(
    "directory", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--delete", is_flag=True, help="Delete each message handled instead of keeping it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ingest(directory: Path, delete: bool, as_json: bool) -> None:
    """Record the bounces and complaints in a Maildir that receives returned mail.

    Reads the messages of DIR/new and the unread ones of DIR/cur.  Each one
    handled (recorded, or not a report) moves to DIR/cur flagged seen (S), or
    is deleted with --delete; one that cannot be read or recorded stays where
    it is for the next run.  Exit 0 all handled, 1 some failed, 3 configuration.
    """
    for sub in ("new", "cur"):
        if not (directory / sub).is_dir():
            raise click.BadParameter(f"{directory} is not a Maildir (no {sub}/)", param_hint="DIR")
    settings = _settings()
    _logging(settings)
    runtime = build(settings)
    tally = Tally()
    try:
        for path in _unread(directory):
            _ingest_one(runtime, path, directory, delete, tally)
    finally:
        runtime.close()
    if as_json:
        echo_json(tally.as_dict())
    else:
        click.echo(
            f"{tally.messages} message(s) from {directory}: recorded {tally.recorded}, "
            f"repeated {tally.repeated}, unmatched {tally.unmatched}, "
            f"not a report {tally.not_reports}, failed {len(tally.failed)}"
        )
        for name in tally.failed:
            click.echo(f"mailroom: left in place: {name}", err=True)
    sys.exit(EXIT_FAILED if tally.failed else 0)


def _unread(directory: Path) -> list[Path]:
    """DIR/new's messages, and DIR/cur's not yet flagged seen, oldest name first."""
    found = [p for p in (directory / "new").iterdir() if p.is_file()]
    for path in (directory / "cur").iterdir():
        if path.is_file() and SEEN not in path.name.partition(INFO)[2]:
            found.append(path)
    return sorted(found, key=lambda p: p.name)


def _ingest_one(runtime, path: Path, directory: Path, delete: bool, tally: Tally) -> None:
    import sqlalchemy.exc

    from workers.bounces import take_in

    tally.messages += 1
    name = str(path.relative_to(directory))
    try:
        raw = path.read_bytes()
        handled = take_in(runtime, raw, [], via="maildir")
    except (OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        click.echo(f"mailroom: {name}: {type(exc).__name__}: {_first_line(exc)}", err=True)
        tally.failed.append(name)
        return
    tally.recorded += handled.recorded
    tally.repeated += handled.repeated
    tally.unmatched += handled.unmatched
    tally.not_reports += handled.ignored is not None and not handled.unmatched
    try:
        if delete:
            path.unlink()
        else:
            unique, _, flags = path.name.partition(INFO)
            seen = "".join(sorted(set(flags) | {SEEN}))
            path.rename(directory / "cur" / f"{unique}{INFO}{seen}")
    except FileNotFoundError:
        pass  # another run took it meanwhile
    except OSError as exc:
        click.echo(f"mailroom: {name}: recorded, but cannot move it: {exc}", err=True)
        tally.failed.append(name)


def _first_line(exc: Exception) -> str:
    detail = str(getattr(exc, "orig", None) or exc)
    return detail.splitlines()[0] if detail else ""
