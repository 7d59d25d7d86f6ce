"""HTTP to an OpenAI-compatible server: one JSON POST, retried with exponential backoff when the
fault is transient, and the reachability check made before an evaluation starts.

A transient fault is one that the same request may not meet again: the connection refused or
reset, a timeout, HTTP 408, 409, 425, 429 and 5xx. Any other HTTP error (400, 401, 404: the
request or the key is wrong) is raised at once; retrying it would only wait longer for the same
answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.error
import urllib.request
from dataclasses import dataclass

TRANSIENT_HTTP = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """The endpoint refused or failed a request (after its retries, when the fault was transient)."""

    def __init__(self, message: str, *, transient: bool = False, retry_after_s: float | None = None):
        super().__init__(message)
        self.transient, self.retry_after_s = transient, retry_after_s


@dataclass(frozen=True)
class Backoff:
    """Waits between retries: `base_s * 2**attempt`, at most `max_s`, stretched by up to 25 %
    jitter so that the episodes of an evaluation that met the same outage do not come back in
    step; a server's Retry-After is obeyed instead (within `max_s`)."""

    retries: int = 5
    base_s: float = 1.0
    max_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None = None, jitter: float = 0.0) -> float:
        if retry_after_s is not None:
            return min(self.max_s, max(0.0, retry_after_s))
        return min(self.max_s, self.base_s * 2**attempt) * (1 + 0.25 * jitter)


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    try:
        return float(exc.headers.get("Retry-After", ""))
    except (TypeError, ValueError):  # absent, or an HTTP date: fall back to the backoff
        return None


def post_json(url: str, body: dict, api_key: str | None, timeout_s: float) -> dict:
    """One POST; raises EndpointError, marked transient or not."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        transient = exc.code in TRANSIENT_HTTP
        retry_after = _retry_after(exc) if transient else None
        raise EndpointError(
            f"{url}: HTTP {exc.code}: {exc.read()[:300]!r}", transient=transient, retry_after_s=retry_after
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise EndpointError(f"{url}: {getattr(exc, 'reason', exc)}", transient=True) from None
    except json.JSONDecodeError as exc:  # a proxy's error page, a truncated body
        raise EndpointError(f"{url}: the reply is not JSON ({exc})", transient=True) from None


async def post_with_retries(url: str, body: dict, api_key: str | None, timeout_s: float, backoff: Backoff) -> dict:
    """`post_json` in a thread, retried while the fault is transient; the last fault is raised,
    with the number of attempts in its message."""
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(post_json, url, body, api_key, timeout_s)
        except EndpointError as exc:
            if not exc.transient or attempt == backoff.retries:
                if attempt == 0:
                    raise
                raise EndpointError(f"{exc} (after {attempt + 1} attempts)", transient=True) from None
            await asyncio.sleep(backoff.delay(attempt, exc.retry_after_s, random.random()))
            attempt += 1


def check_endpoint(base_url: str, timeout_s: float = 10.0) -> None:
    """Refuse, before any episode starts, an endpoint that cannot be reached at all. An HTTP
    error still counts as reachable: not every server offers /models."""
    try:
        urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"openai:{base_url}: the endpoint cannot be reached ({reason}); is the server up?") from None
