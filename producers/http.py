"""HTTP pollers of The Odds API v4, SportsBettingDime and Action Network.

One poll = one request (plus retries) = at most ONE raw envelope holding the response body
verbatim. Why the choices:

- Event id = ``<source>-<sha256(body)[:32]>``: a re-sent identical response (a retry that did
  reach the server twice, a restart) gets the same id, hence the same Kafka partition and the
  same raw row (the raw sink's key is ``(source, event_id)``). A body identical to the previous
  poll's is logged as "unchanged" and not published again: it would carry the same id.
- Only a 200 whose body is valid JSON is published. 429 (Retry-After honoured), 5xx, timeouts,
  dropped connections, truncated JSON and HTML error pages are retried with exponential backoff
  and "equal jitter" (delay k is in [b·2^k/2, b·2^k]), so each wait is at least the previous one
  and concurrent pollers still spread out. 401/403 stop the collector; other 4xx fail the poll.
- A per-source rate limit spaces every request (retries included) by ``min_interval``.
- The Odds API key comes from the environment through the settings object (``ODDS_API_KEY``,
  see ``CollectorSettings``), is sent as ``apiKey`` and is redacted from the url kept in
  ``request`` metadata and from every log line. Its quota headers (``x-requests-remaining`` /
  ``x-requests-used``) are logged; polling stops at 0 remaining.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
from yarl import URL

log = logging.getLogger("oddsflow.collect")

REDACTED = "REDACTED"
QUOTA_REMAINING = "x-requests-remaining"
QUOTA_USED = "x-requests-used"


@dataclass(frozen=True)
class SourceSpec:
    """Where a source lives and how politely to ask it."""

    name: str
    base_url: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    min_interval: float = 1.0  # seconds between two requests (retries included)
    key_env: str | None = None  # environment variable holding the API key
    key_param: str | None = None  # query parameter the key travels in

    def url(self) -> URL:
        return URL(self.base_url.rstrip("/") + self.path).with_query(dict(self.params))


SOURCES: dict[str, SourceSpec] = {
    "odds_api": SourceSpec(
        "odds_api",
        "https://api.the-odds-api.com",
        "/v4/sports/baseball_mlb/odds",
        (("regions", "us"), ("markets", "h2h,spreads,totals"), ("oddsFormat", "american")),
        min_interval=1.0,
        key_env="ODDS_API_KEY",
        key_param="apiKey",
    ),
    "sbd": SourceSpec(
        "sbd",
        "https://srfeeds.sportsbettingdime.com",
        "/v2/matchups/mlb/betting-splits",
        (("books", "betmgm,bet365,fanatics,draftkings,caesars,fanduel"),),
        min_interval=2.0,
    ),
    "action_network": SourceSpec(
        "action_network",
        "https://api.actionnetwork.com",
        "/web/v1/scoreboard/mlb",
        (("period", "game"), ("bookIds", "15,30,76,75,123,69,68,972,71,247,79")),
        min_interval=2.0,
    ),
}


def source_spec(name: str, base_url: str | None = None, **changes: Any) -> SourceSpec:
    """The named source, optionally pointed at another host (a mirror, a loopback test server)."""
    spec = SOURCES[name]
    if base_url:
        changes["base_url"] = base_url
    return replace(spec, **changes) if changes else spec


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # per poll, first try included
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 900.0  # a Retry-After beyond this is clamped
    timeout: float = 15.0  # whole request, seconds

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Equal jitter: half fixed, half random, so delay ``retry+1`` ≥ delay ``retry``."""
        d = min(self.max_delay, self.base_delay * 2**retry)
        return d / 2 + rng.uniform(0, d / 2)


class Sink(Protocol):
    """What a poller needs of :class:`producers.publisher.Publisher`."""

    def publish(
        self,
        event_id: str,
        payload: bytes,
        fetched_at: datetime,
        content_type: str = ...,
        request: dict[str, str] | None = ...,
    ) -> None: ...

    def flush(self, timeout: float = ...) -> int: ...


@dataclass
class Poll:
    """What one poll did: the log line and the tests read it."""

    number: int
    outcome: str = "failed"  # published | unchanged | failed | fatal | quota_exhausted
    attempts: int = 0
    delays: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    records: int | None = None
    event_id: str | None = None
    quota_remaining: str | None = None
    quota_used: str | None = None
    unacked: int = 0


class RateLimiter:
    """At most one request per ``min_interval`` seconds (monotonic clock)."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self.min_interval


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def count_records(doc: Any) -> int:
    """Games in a response: a list (Odds API) or an object with ``games`` (SBD, Action Network)."""
    if isinstance(doc, list):
        return len(doc)
    if isinstance(doc, dict) and isinstance(doc.get("games"), list):
        return len(doc["games"])
    return 1


def payload_event_id(source: str, body: bytes) -> str:
    return f"{source}-{hashlib.sha256(body).hexdigest()[:32]}"


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Fatal(Exception):
    pass


class HttpCollector:
    """Polls one source and publishes each new valid response as one raw envelope."""

    def __init__(
        self,
        spec: SourceSpec,
        publisher: Sink,
        session: aiohttp.ClientSession,
        policy: RetryPolicy | None = None,
        *,
        api_key: str | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.publisher = publisher
        self.session = session
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(spec.min_interval)
        self.stop = asyncio.Event()
        self._sleep = sleep or self._interruptible_sleep
        self.api_key = api_key or None
        if spec.key_env and self.api_key is None:
            raise SystemExit(
                f"oddsflow: {spec.name} needs an API key: set {spec.key_env} in the environment"
                f" (or ODDSFLOW_COLLECTORS__{spec.key_env}_FILE to a file holding it)"
            )
        self.last_hash: str | None = None
        self.polls: list[Poll] = []
        self.published = 0
        self.quota_exhausted = False

    async def _interruptible_sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop (SIGTERM must not wait for a backoff)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, REDACTED) if self.api_key else text

    def _urls(self) -> tuple[URL, str]:
        url = self.spec.url()
        shown = url
        if self.spec.key_param and self.api_key:
            url = url.update_query({self.spec.key_param: self.api_key})
            shown = shown.update_query({self.spec.key_param: REDACTED})
        return url, str(shown)

    async def _attempt(self, url: URL, poll: Poll) -> tuple[bytes, Any, int]:
        """One request; returns (body, decoded JSON, status) or raises _Retry / _Fatal."""
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        try:
            async with self.session.get(url, timeout=timeout, allow_redirects=True) as resp:
                body = await resp.read()
                poll.quota_remaining = resp.headers.get(QUOTA_REMAINING, poll.quota_remaining)
                poll.quota_used = resp.headers.get(QUOTA_USED, poll.quota_used)
                status = resp.status
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                ctype = resp.headers.get("Content-Type", "?")
        except TimeoutError:
            raise _Retry(f"timeout after {self.policy.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Retry(self.redact(f"{type(exc).__name__}: {exc}")) from None
        if status == 429:
            raise _Retry("HTTP 429 rate limited", retry_after)
        if status >= 500:
            raise _Retry(f"HTTP {status}", retry_after)
        if status in (401, 403):
            raise _Fatal(f"HTTP {status}: not authorised (check {self.spec.key_env or 'access'})")
        if status != 200:
            raise _Fatal(f"HTTP {status}")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            what = "HTML page" if body.lstrip()[:1] == b"<" else "invalid JSON"
            raise _Retry(f"200 with {what} ({ctype}, {len(body)} bytes): {exc}") from None
        return body, doc, status

    async def poll_once(self) -> Poll:
        """One poll: request with retries, publish if new, log one line."""
        poll = Poll(number=len(self.polls) + 1)
        self.polls.append(poll)
        started = time.monotonic()
        url, shown = self._urls()
        body: bytes | None = None
        while poll.attempts < self.policy.attempts and not self.stop.is_set():
            await self.limiter.wait()
            poll.attempts += 1
            try:
                body, doc, status = await self._attempt(url, poll)
                break
            except _Fatal as exc:
                poll.outcome = "fatal"
                poll.errors.append(str(exc))
                break
            except _Retry as exc:
                poll.errors.append(exc.reason)
                if poll.quota_remaining == "0" or poll.attempts >= self.policy.attempts:
                    break
                delay = self.policy.backoff(len(poll.delays), self.rng)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.policy.max_retry_after))
                poll.delays.append(delay)
                log.warning(
                    "%s poll %d attempt %d: %s; retrying in %.2fs",
                    self.spec.name, poll.number, poll.attempts, exc.reason, delay,
                )  # fmt: skip
                await self._sleep(delay)
        if body is not None:
            poll.records = count_records(doc)
            digest = payload_event_id(self.spec.name, body)
            if digest == self.last_hash:
                poll.outcome = "unchanged"
            else:
                request = {"url": shown, "status": str(status)}
                quota = ((QUOTA_REMAINING, poll.quota_remaining), (QUOTA_USED, poll.quota_used))
                request.update({h: v for h, v in quota if v is not None})
                self.publisher.publish(digest, body, datetime.now(UTC), "application/json", request)
                poll.unacked = await asyncio.to_thread(self.publisher.flush, 30.0)
                self.last_hash = digest
                poll.event_id = digest
                poll.outcome = "published"
                self.published += 1
        if poll.quota_remaining == "0":
            self.quota_exhausted = True
            if poll.outcome == "failed":
                poll.outcome = "quota_exhausted"
        self._log(poll, time.monotonic() - started)
        return poll

    def _log(self, poll: Poll, took: float) -> None:
        quota = (
            f"quota left {poll.quota_remaining} (used {poll.quota_used})"
            if poll.quota_remaining is not None
            else "quota n/a"
        )
        what = {
            "published": f"changed, published {poll.event_id}"
            + (f" ({poll.unacked} NOT acknowledged)" if poll.unacked else ", acknowledged"),
            "unchanged": "unchanged, not published",
        }.get(poll.outcome, f"{poll.outcome}: {'; '.join(poll.errors[-1:]) or 'stopped'}")
        level = logging.INFO if poll.outcome in ("published", "unchanged") else logging.ERROR
        log.log(
            level,
            "%s poll %d: %s records, %s, %s, %d attempt(s), %.2fs",
            self.spec.name, poll.number,
            "?" if poll.records is None else poll.records,
            what, quota, poll.attempts, took,
        )  # fmt: skip

    async def run(self, interval: float, once: bool = False) -> int:
        """Poll every ``interval`` s until stopped: 0 = fine, 1 = last poll failed, 2 = fatal."""
        rc = 0
        while not self.stop.is_set():
            began = time.monotonic()
            poll = await self.poll_once()
            if poll.outcome == "fatal":
                return 2
            rc = 0 if poll.outcome in ("published", "unchanged") else 1
            if self.quota_exhausted:
                log.warning("%s: API quota exhausted (0 remaining), stopping", self.spec.name)
                break
            if once:
                break
            await self._sleep(max(0.0, interval - (time.monotonic() - began)))
        return rc


async def run_http_collector(
    spec: SourceSpec,
    publisher: Sink,
    interval: float,
    once: bool,
    policy: RetryPolicy | None = None,
    install_signals: bool = True,
    api_key: str | None = None,
) -> tuple[int, HttpCollector]:
    """Run a poller in this event loop; SIGINT/SIGTERM stop it between (or during) waits."""
    import signal

    async with aiohttp.ClientSession(
        headers={"User-Agent": "oddsflow-collector/0.1", "Accept": "application/json"}
    ) as session:
        collector = HttpCollector(spec, publisher, session, policy, api_key=api_key)
        loop = asyncio.get_running_loop()
        if install_signals:
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(s, collector.stop.set)
        try:
            rc = await collector.run(interval, once)
        finally:
            if install_signals:
                for s in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(s)
    return rc, collector
