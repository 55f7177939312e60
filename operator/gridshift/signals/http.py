"""One GET with the error handling every HTTP price feed shares.

Turns transport failures and HTTP statuses into PriceFetchError naming the feed, without ever
putting the request's query string (which may hold a security token) into a message.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from gridshift.signals.prices import PriceFetchError


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare for these APIs; the backoff policy decides instead


def get_body(
    http: httpx.Client,
    feed: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float,
    max_body_bytes: int,
    pass_statuses: frozenset[int] = frozenset(),
) -> tuple[int, bytes]:
    """Status and full body of GET `url`; statuses in `pass_statuses` are returned, not raised."""
    try:
        with http.stream(
            "GET", url, params=dict(params or {}), headers=dict(headers or {}), timeout=timeout_seconds
        ) as response:
            status = response.status_code
            if status in (401, 403):
                raise PriceFetchError(
                    feed, "http.status", f"HTTP {status}: credentials refused (check the token Secret)", retryable=False
                )
            if status == 429:
                raise PriceFetchError(
                    feed,
                    "http.status",
                    "HTTP 429: rate limited",
                    retryable=True,
                    retry_after_seconds=_retry_after(response),
                )
            if status >= 500 and status not in pass_statuses:
                raise PriceFetchError(feed, "http.status", f"HTTP {status}: server error", retryable=True)
            if status >= 300 and status not in pass_statuses:
                raise PriceFetchError(feed, "http.status", f"HTTP {status}", retryable=False)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_body_bytes:
                    raise PriceFetchError(
                        feed,
                        "http.body",
                        f"body larger than {max_body_bytes} bytes; not a price document",
                        retryable=False,
                    )
                chunks.append(chunk)
            return status, b"".join(chunks)
    except httpx.TimeoutException as error:
        raise PriceFetchError(
            feed, "http", f"no complete answer within {timeout_seconds} s ({type(error).__name__})", retryable=True
        ) from error
    except httpx.RemoteProtocolError as error:
        raise PriceFetchError(
            feed, "http.body", f"connection closed before the body was complete ({error})", retryable=True
        ) from error
    except httpx.HTTPError as error:
        # Transport errors only; the message is the class name so no URL (and no token) leaks.
        raise PriceFetchError(feed, "http", f"request failed ({type(error).__name__})", retryable=True) from error
