"""The feeds' shared HTTP client keeps no cookies.

One client serves the price and carbon feeds of every cluster (service.wiring), each with credentials of
its own. httpx stores each Set-Cookie answered and sends it back with later requests to that host, so a
session cookie answered to cluster A's feed went out with cluster B's requests (found in review). A real
HTTP server on localhost (tests/signals/conftest.py) answers, and records what each request carried."""

from __future__ import annotations

import json

from gridshift.api.regional_cluster import PriceFeedSpec
from gridshift.signals.feed_service import MappingSecretResolver
from gridshift.signals.http import feed_http_client
from gridshift.signals.price_service import build_price_feed
from tests.signals.conftest import LocalServer, Reply
from tests.signals.price_worlds import HTTP_JSON_SPEC_FIELDS, NOW, SETTINGS, http_json_body, recorded_intervals

SESSION = "session=TENANT_A_SESSION_SECRET"


def test_a_cookie_one_feed_is_answered_is_sent_with_no_later_request(local_server: LocalServer) -> None:
    body = http_json_body(recorded_intervals())

    def respond(request: object) -> Reply:
        # Every answer sets cookies, host-wide and for the path: whichever request comes later must carry none.
        return Reply(body=body, headers={"Set-Cookie": f"{SESSION}; Path=/"})

    local_server.respond = respond
    secrets = MappingSecretResolver(
        {
            (None, "a", "headers"): json.dumps({"X-Api-Key": "key-A"}),
            (None, "b", "headers"): json.dumps({"X-Api-Key": "key-B"}),
        }
    )
    with feed_http_client() as http:
        feeds = [
            build_price_feed(
                PriceFeedSpec.model_validate(
                    {
                        "type": "httpJson",
                        "currency": "EUR",
                        "fxToUsd": 1.1,
                        "httpJson": {
                            "url": f"{local_server.url}/tenant-{tenant}",
                            "headersSecretRef": {"name": tenant, "key": "headers"},
                            **{_camel(k): v for k, v in HTTP_JSON_SPEC_FIELDS.items()},
                        },
                    }
                ),
                name=f"cluster-{tenant}",
                secrets=secrets,
                http=http,
                clock=lambda: NOW,
                settings=SETTINGS,
            )
            for tenant in ("a", "b")
        ]
        for feed in [*feeds, *feeds]:
            assert feed.read(force=True).usable
        stored = len(http.cookies.jar)
    seen = [(r.path, r.headers.get("x-api-key"), r.headers.get("cookie")) for r in local_server.requests]
    assert seen == [
        ("/tenant-a", "key-A", None),
        ("/tenant-b", "key-B", None),
        ("/tenant-a", "key-A", None),
        ("/tenant-b", "key-B", None),
    ]
    assert stored == 0


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_the_feed_client_keeps_the_timeout_it_is_given() -> None:
    with feed_http_client(7.5) as http:
        assert http.timeout.read == 7.5
