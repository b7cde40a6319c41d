"""The interactive API document at ``/docs``: Swagger UI from files this process
serves itself, so the page loads nothing from another host (no CDN to trust,
none to reach from a closed network) and a strict Content-Security-Policy holds.

The files are Swagger UI 5's, as the ``fastapi-offline`` package ships them
(Swagger UI 4, as ``swagger-ui-bundle`` ships it, cannot read OpenAPI 3.1).
Redoc stays off: its styles are injected ``<style>`` elements and its validator
compiles code at run time, which the policy would have to allow.
"""

import base64
import hashlib
import re
from functools import lru_cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

DOCS = "/docs"
ASSETS = "/docs/assets"
#: The files the page uses, and no others (the package also ships Redoc).
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
#: Static for one installed version: browsers may keep them a day.
_CACHE = "public, max-age=86400"
#: Swagger UI starts from one inline script; the policy allows that script by
#: its hash rather than allowing any inline script ('unsafe-inline').
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}",
            # The stylesheet draws its icons from data: URIs.
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def install(app: FastAPI) -> None:
    directory = files("fastapi_offline") / "static"

    @lru_cache(maxsize=4)
    def page(root: str) -> tuple[str, dict[str, str]]:
        """The page and its headers, under ``root`` (the path a proxy mounts us at)."""
        html = get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # The default validator sends the document's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        ).body.decode()
        headers = {
            "Content-Security-Policy": content_security_policy(html),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        return html, headers

    @app.get(DOCS, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        html, headers = page(request.scope.get("root_path", "").rstrip("/"))
        return HTMLResponse(html, headers=headers)

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _FILES.get(name)
        if media_type is None:
            raise HTTPException(404)
        return FileResponse(
            directory / name,
            media_type=media_type,
            headers={"Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"},
        )
