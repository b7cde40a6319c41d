"""``/docs`` loads nothing from another host, under a Content-Security-Policy that
allows only the API's own origin, and Swagger UI really renders under it."""

import base64
import hashlib
import re
from pathlib import Path

import httpx

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def policy(response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    return {name: sources for name, *sources in (d.split() for d in header.split(";") if d.strip())}


def test_docs_reference_only_local_assets_and_each_one_is_served(api):
    page = httpx.get(f"{api.url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    foreign = [url for url in re.findall(r"https?://[^\s'\"<>)]+", page.text)
               if not url.startswith(api.url)]  # fmt: skip
    assert foreign == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3
    for path in assets:
        assert path.startswith("/docs/assets/"), path
        asset = httpx.get(api.url + path)
        assert asset.status_code == 200, path
        expected = CONTENT_TYPES[Path(path).suffix]
        assert asset.headers["content-type"].startswith(expected), path
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert "/openapi.json" in page.text
    # The bundle's other files (a demo page that loads the Petstore from the
    # internet among them) are not served.
    missing = httpx.get(f"{api.url}/docs/assets/index.html")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    assert httpx.get(f"{api.url}/redoc").status_code == 404


def test_docs_policy_allows_self_and_its_one_inline_script_by_hash(api):
    page = httpx.get(f"{api.url}/docs")
    directives = policy(page)
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    every_source = {source for sources in directives.values() for source in sources}
    assert "'unsafe-inline'" not in every_source and "'unsafe-eval'" not in every_source
    assert not any(source.startswith(("http", "*")) for source in every_source)
    [inline] = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert directives["script-src"] == ["'self'", f"'sha256-{digest}'"]


def test_swagger_ui_renders_every_operation_in_chromium(api, browser):
    page = browser.new_page()
    requested, complaints = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: complaints.append(message.text))
    page.on("pageerror", lambda error: complaints.append(str(error)))
    page.goto(f"{api.url}/docs")
    operations = sum(len(methods) for methods in api.spec["paths"].values())
    # Locators, not wait_for_function: that evaluates a string, which the policy forbids.
    page.locator(".opblock").nth(operations - 1).wait_for(timeout=15_000)
    assert page.locator(".opblock").count() == operations
    assert "mailroom verification API" in page.inner_text(".info")
    # "Try it out" calls the API from the page: the policy lets it reach its own origin.
    health = page.locator("#operations-default-health_healthz_get")
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    status = health.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    page.close()
    assert [url for url in requested if not url.startswith(api.url)] == []
    assert [text for text in complaints if "Content Security Policy" in text] == []
    assert complaints == []
