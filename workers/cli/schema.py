"""`mailroom schema`: the event contract as JSON Schema and TypeScript, for producers."""

from pathlib import Path

import click

from domain.events import EVENT_TYPES
from workers.cli.base import Failure, cli

#: What files in an --out directory look generated: others are never touched.
_GENERATED_SUFFIXES = (".schema.json", ".d.ts")


def _generated(path: Path) -> bool:
    return path.is_file() and path.name.endswith(_GENERATED_SUFFIXES)


def differences(directory: Path, files: dict[str, str]) -> list[str]:
    """How ``directory`` differs from ``files`` (name -> text), one line each."""
    found = []
    for name, text in files.items():
        path = directory / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif path.read_bytes() != text.encode("utf-8"):
            found.append(f"{name} differs")
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if _generated(path) and path.name not in files:
                found.append(f"{path.name} is not generated any more: delete it")
    return found


@cli.command()
@click.argument("event_type", metavar="TYPE", required=False, type=click.Choice(EVENT_TYPES))
@click.option("--typescript", is_flag=True, help="Print the TypeScript declarations instead.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Write the schema of any event, one per type and the TypeScript declarations into DIR.",
)
@click.option(
    "--check",
    is_flag=True,
    help="With --out: write nothing; exit 1 if DIR differs from what would be written.",
)
def schema(event_type, typescript, out, check) -> None:
    """Print the JSON Schema (2020-12) of any event, or of one TYPE.

    Generated from the models the workers validate with: an event they would
    dead-letter as invalid fails it too, but for the rules only they can check
    (reserved address domains such as .test, the 16 KiB limit).

    \b
    mailroom schema                        # any event: the envelope and every type
    mailroom schema user.signup_requested  # one type
    mailroom schema --typescript           # TypeScript declarations
    mailroom schema --out schema           # write schema/ as checked in
    mailroom schema --out schema --check   # exit 1 if schema/ is out of date
    """
    from domain.schema import (
        TYPESCRIPT_FILE,
        event_schema,
        schema_files,
        schema_text,
        type_schema,
    )

    if check and not out:
        raise click.UsageError("--check needs --out DIR")
    if out:
        if event_type or typescript:
            raise click.UsageError("--out writes every file: it takes no TYPE or --typescript")
        _write_or_check(Path(out), schema_files(), check)
    elif typescript:
        if event_type:
            raise click.UsageError("--typescript declares every type: it takes no TYPE")
        click.echo(schema_files()[TYPESCRIPT_FILE], nl=False)
    else:
        chosen = type_schema(event_type) if event_type else event_schema()
        click.echo(schema_text(chosen), nl=False)


def _write_or_check(directory: Path, files: dict[str, str], check: bool) -> None:
    regenerate = f"run `mailroom schema --out {directory}` to regenerate"
    if check:
        if found := differences(directory, files):
            listed = "\n".join(f"  {line}" for line in found)
            raise Failure(
                f"{directory} is out of date with the event models:\n{listed}\n{regenerate}"
            )
        click.echo(f"{directory}: {len(files)} files match the event models")
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode("utf-8"))
        click.echo(f"wrote {directory / name}")
    for line in differences(directory, files):  # only files no longer generated remain
        click.echo(f"mailroom: {line}", err=True)
