"""The API's Prometheus metrics: counted per route template, never per raw path."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from workers.api import create_app
from workers.store import apikeys


def scrape(api) -> dict[str, list]:
    response = httpx.get(f"{api.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def test_requests_are_counted_and_timed_per_route_template(mailroom, api):
    with mailroom.rt.engine.begin() as conn:
        key = apikeys.create(conn, "notes", mailroom.rt.clock())[1]
    api.call("GET", "/healthz", None)
    api.call("POST", "/v1/codes/verify", None, json={})  # no key: 401
    api.call("POST", "/v1/codes/verify", key, json={"purpose": "invite"})  # 422
    users = "/v1/users/{user_id}/revoke"
    for user in ("u1", "u2"):
        assert api.call("POST", f"/v1/users/{user}/revoke", key, users).status_code == 200
    assert httpx.get(f"{api.url}/no/such/thing").status_code == 404
    assert httpx.get(f"{api.url}/v1/codes/verify").status_code == 405

    families = scrape(api)
    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["mailroom_api_requests"]
        if s.name == "mailroom_api_requests_total"
    }
    assert counts == {
        ("/openapi.json", "GET", "200"): 1,  # the test server reads the document first
        ("/healthz", "GET", "200"): 1,
        ("/v1/codes/verify", "POST", "401"): 1,
        ("/v1/codes/verify", "POST", "422"): 1,
        (users, "POST", "200"): 2,
        ("unmatched", "GET", "404"): 1,
        ("/v1/codes/verify", "GET", "405"): 1,
    }
    timed = {
        (s.labels["route"], s.labels["method"]): s.value
        for s in families["mailroom_api_request_duration_seconds"]
        if s.name == "mailroom_api_request_duration_seconds_count"
    }
    assert timed[(users, "POST")] == 2 and timed[("unmatched", "GET")] == 1
    # The scrape itself shows up in the next one, and no raw path ever does.
    again = httpx.get(f"{api.url}/metrics").text
    assert 'route="/metrics"' in again and "/u1/" not in again and "/no/such" not in again


def test_a_method_no_route_knows_is_one_label_not_a_new_series(api):
    for method in ("FOO", "BAR"):
        assert httpx.request(method, f"{api.url}/healthz").status_code == 405
    samples = scrape(api)["mailroom_api_requests"]
    methods = {s.labels["method"] for s in samples if s.labels["route"] == "/healthz"}
    assert methods == {"other"}


def test_each_app_has_its_own_registry(mailroom):
    # The global registry would refuse the second app's metrics as duplicates.
    create_app(mailroom.rt)
    create_app(mailroom.rt)


def test_metrics_are_not_in_the_openapi_document(api):
    assert "/metrics" not in api.spec["paths"]
    assert not any(path.startswith("/docs") for path in api.spec["paths"])
