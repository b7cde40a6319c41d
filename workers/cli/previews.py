"""`mailroom preview`: render mails with sample data."""

from datetime import UTC, datetime
from pathlib import Path

import click

from domain.samples import SAMPLES, sample_context
from workers.cli.base import (
    Failure,
    cli,
    current_settings,
)

#: The formats ``--out FILE`` writes, by the file's suffix.
OUT_SUFFIXES = (".html", ".txt", ".eml")

HELP = f"""Render a kind of mail with sample data, to look at it.

KIND is one of: {", ".join(SAMPLES)}.

Links are built as in real mail (the app's base URL and link path) around a
sample token that verifies nothing.  --out writes by its suffix: .html (the
HTML part), .txt (subject and text part) or .eml (the whole message).

\b
mailroom preview signup --locale fr --out signup.fr.eml
mailroom preview --all --out previews/
"""


@cli.command(help=HELP)
@click.argument("kind", required=False)
@click.option("--locale", "locale", help="Locale, e.g. fr or zh-CN (default: the app's).")
@click.option("--app", "app_id", help="Render with this app's branding (an apps-file id).")
@click.option(
    "--out",
    type=click.Path(),
    help="A .html, .txt or .eml file; with --all, a directory. Default: HTML on stdout.",
)
@click.option(
    "--all", "render_all", is_flag=True, help="Every kind in every locale, plus index.html."
)
def preview(kind, locale, app_id, out, render_all) -> None:
    from workers.apps import load_directory
    from workers.rendering import Renderer

    if out and not render_all and Path(out).suffix.lower() not in OUT_SUFFIXES:
        # Writing HTML into signup.pdf would look like success and open as garbage.
        raise click.BadParameter(
            f"{out!r} must end in .html, .txt or .eml (the suffix picks the format)",
            param_hint="'--out'",
        )
    settings = current_settings()
    renderer = Renderer(overrides=settings.templates_dir)
    kinds = renderer.kinds()
    if render_all:
        if kind or not out:
            raise click.UsageError("--all takes no KIND and needs --out DIRECTORY")
    elif kind not in kinds:
        raise click.UsageError(f"KIND must be one of: {', '.join(kinds)}")
    directory = load_directory(settings)
    app = directory.for_source(app_id or "preview")
    if app is None or (app_id and app_id not in directory.apps and directory.apps):
        raise Failure(f"no app {app_id!r} in {settings.apps_file}")

    def render(kind_, locale_):
        context = {**sample_context(kind_, app, settings.ttls), **app.branding()}
        return renderer.render(kind_, locale_, context, app=app)

    if render_all:
        _preview_all(Path(out), kinds, renderer.locales(app.id), render)
        return
    rendered = render(kind, locale)
    if out is None:
        click.echo(rendered.html)
        return
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix == ".eml":
        from domain.messages import as_bytes

        target.write_bytes(as_bytes(_preview_message(app, rendered)))
    elif suffix == ".txt":
        target.write_text(f"Subject: {rendered.subject}\n\n{rendered.text}")
    else:
        target.write_text(rendered.html)
    click.echo(f"{kind} ({rendered.locale}) -> {target}")


def _preview_message(app, rendered):
    from domain.messages import build_message, message_id_for

    return build_message(
        sender=app.from_address,
        sender_name=app.from_name or app.product(),
        recipient="ada@example.com",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_for(app.from_address),
        date=datetime.now(UTC),
    )


def _preview_all(directory: Path, kinds, locales, render) -> None:
    from html import escape

    directory.mkdir(parents=True, exist_ok=True)
    locales = ["en", *locales]
    rows = []
    for kind in kinds:
        cells = []
        for locale in locales:
            rendered = render(kind, locale)
            name = f"{kind}.{locale}.html"
            (directory / name).write_text(rendered.html)
            cells.append(f'<td><a href="{name}">{escape(rendered.subject)}</a></td>')
        rows.append(f"<tr><th>{kind}</th>{''.join(cells)}</tr>")
    header = "".join(f"<th>{locale}</th>" for locale in locales)
    (directory / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mailroom previews</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;text-align:left}</style>"
        f"</head><body><h1>mailroom previews</h1><table><tr><th></th>{header}</tr>"
        f"{''.join(rows)}</table></body></html>\n"
    )
    click.echo(f"{len(kinds) * len(locales)} previews -> {directory / 'index.html'}")
