"""Jinja rendering of ``templates/<kind>/{subject.txt,body.txt,body.html}``.

HTML is autoescaped, text is not; an undefined variable is an error, never an
empty string.  Compiled templates are cached by the environment.
"""

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from domain.errors import RenderError

#: The templates shipped with mailroom, beside the packages.
TEMPLATES_DIR = Path(__file__).parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def render(self, kind: str, locale: str, context: dict) -> Rendered:
        values = {**context, "locale": locale}
        try:
            subject = self.environment.get_template(f"{kind}/subject.txt").render(values)
            text = self.environment.get_template(f"{kind}/body.txt").render(values)
            html = self.environment.get_template(f"{kind}/body.html").render(values)
        except TemplateError as exc:
            raise RenderError(f"template {kind!r}: {type(exc).__name__}: {exc}") from None
        subject = " ".join(subject.split())
        if not subject:
            raise RenderError(f"template {kind!r}: the subject is empty")
        return Rendered(subject=subject, text=text.strip() + "\n", html=html)
