"""HTTP pollers of The Odds API v4, SportsBettingDime and Action Network.

One poll = one request (plus retries) = at most ONE raw envelope holding the response body
verbatim. An always-on poller survives any response: it stores what it can within the limits
(``[collectors] max_payload_bytes``, ``max_json_depth``), records every refusal on
``dlq.collect`` (``producers/refusals.py``; ``oddsflow dlq list`` shows them) and keeps polling.
Why the choices:

- Event id = ``<source>-<sha256(body)[:32]>``: a re-sent identical response (a retry that did
  reach the server twice, a restart) gets the same id, hence the same Kafka partition and the
  same raw row (the raw sink's key is ``(source, event_id)``). A body identical to the previous
  poll's is logged as "unchanged" and not published again: it would carry the same id.
- Only a 200 whose body is JSON is published, judged by the body, not the Content-Type header
  (which is kept in the request metadata). The body is read in chunks and never past the size
  limit: a Content-Length over it is refused unread, a longer stream is cut off. Its nesting
  is measured without recursion before ``json.loads`` sees it (the collector needs the JSON only
  to know it is JSON and to count its top-level records), so a body nested 100,000 deep is a
  refusal, not a RecursionError. A body over the size or depth limit is refused at once (the
  next poll asks again); one that is not JSON (empty, truncated, binary, an HTML error page) is
  retried like a transport failure, each such body recorded.
- 429 (Retry-After honoured), 5xx, timeouts (the whole request, slow senders included) and
  dropped connections (a reset mid-body) are retried with exponential backoff and "equal
  jitter" (delay k is in [b·2^k/2, b·2^k]), so each wait is at least the previous one and
  concurrent pollers still spread out. A poll that ends without a body is recorded once.
  401/403 stop the collector; any other status fails the poll (recorded), and polling goes on.
- The record's Kafka timestamp is the fetch time, the envelope's ``fetched_at``.
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
from itertools import accumulate
from typing import Any, Protocol

import aiohttp
from confluent_kafka import KafkaException
from yarl import URL

from core.settings import CollectorSettings, Settings
from producers.publisher import PublishStats
from producers.refusals import Refusal, RefusalSink

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

    stats: PublishStats  # ``failed`` grows when the broker refuses a record

    def publish(
        self,
        event_id: str,
        payload: bytes,
        fetched_at: datetime,
        content_type: str = ...,
        request: dict[str, str] | None = ...,
        key: str | None = ...,
        timestamp: datetime | None = ...,
    ) -> None: ...

    def flush(self, timeout: float = ...) -> int: ...


_DEFAULTS = CollectorSettings()


@dataclass(frozen=True)
class BodyLimits:
    """What a poller stores (``[collectors]`` settings; the defaults are theirs)."""

    max_bytes: int = _DEFAULTS.max_payload_bytes
    max_depth: int = _DEFAULTS.max_json_depth

    @classmethod
    def of(cls, settings: Settings) -> BodyLimits:
        c = settings.collectors
        return cls(c.max_payload_bytes, c.max_json_depth)


@dataclass
class Poll:
    """What one poll did: the log line and the tests read it."""

    number: int
    outcome: str = "failed"  # published | unchanged | refused | failed | fatal | quota_exhausted
    attempts: int = 0
    delays: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_class: str | None = None  # of the last failure
    records: int | None = None
    event_id: str | None = None
    quota_remaining: str | None = None
    quota_used: str | None = None
    unacked: int = 0
    refusals: int = 0  # bodies of this poll recorded on dlq.collect


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


# Error classes of what a poller records on dlq.collect.
PAYLOAD_TOO_LARGE = "payload_too_large"
JSON_TOO_DEEP = "json_too_deep"
INVALID_JSON = "invalid_json"  # empty, truncated or malformed
HTML_PAGE = "html_page"
NOT_TEXT = "not_text"  # binary: not UTF-8
BROKER_REFUSED = "broker_refused"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
HTTP_ERROR = "http_error"
COLLECTOR_ERROR = "collector_error"
#: Refusals of a body that came back (recorded each, with the body when within the limit).
BODY_CLASSES = frozenset({PAYLOAD_TOO_LARGE, JSON_TOO_DEEP, INVALID_JSON, HTML_PAGE, NOT_TEXT})

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_DEPTH_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _DEPTH_STEP[_open], _DEPTH_STEP[_close] = 1, -1


def json_depth(body: bytes) -> int:
    """How deep a JSON text nests, without recursion and at C speed (~10 ms a MB): escaped
    backslashes and quotes are dropped, so the quotes left pair up around strings; what lies
    between pairs is structure, and its brackets are summed. In UTF-8 no byte of a multi-byte
    character is a quote, a backslash or a bracket. Malformed text gets a number all the same;
    ``json.loads`` judges it afterwards."""
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return max(accumulate(map(_DEPTH_STEP.__getitem__, outside)), default=0)


class _Refused(Exception):
    """A response whose body is not stored; ``retry``: worth asking again within this poll."""

    def __init__(self, error_class: str, reason: str, body: bytes = b"", retry: bool = True):
        super().__init__(reason)
        self.error_class, self.reason, self.body, self.retry = error_class, reason, body, retry


def inspect_body(body: bytes, max_depth: int) -> Any:
    """The decoded JSON of a body within the size limit, or _Refused saying why it is not."""
    if not body.strip():
        raise _Refused(INVALID_JSON, "empty body", body)
    depth = json_depth(body)
    if depth > max_depth:
        reason = f"JSON nested {depth:,} levels deep, over the limit of {max_depth}"
        raise _Refused(JSON_TOO_DEEP, reason, body, retry=False)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start:,})"
        raise _Refused(NOT_TEXT, why, body) from None
    try:
        return json.loads(text)
    except RecursionError:  # unreachable below the depth limit; never a traceback all the same
        raise _Refused(JSON_TOO_DEEP, "JSON nested too deep to parse", body, retry=False) from None
    except ValueError as exc:
        if text.lstrip()[:1] == "<":
            raise _Refused(HTML_PAGE, f"HTML page: {exc}", body) from None
        raise _Refused(INVALID_JSON, f"invalid JSON: {exc}", body) from None


class _Retry(Exception):
    def __init__(self, error_class: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason
        self.retry_after = retry_after


class _Failed(Exception):
    """The poll fails without a retry (an unexpected status); polling goes on."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class, self.reason = error_class, reason


class _Fatal(Exception):
    pass


@dataclass
class _Response:
    body: bytes
    doc: Any
    status: int
    content_type: str
    fetched_at: datetime


class _LogRefusals:
    """Refusals only logged: a poller made without a dead-letter writer (tests, tools)."""

    def refuse(self, refusal: Refusal) -> None:
        log.warning("refused (%s): %s", refusal.error_class, refusal.reason)


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
        limits: BodyLimits | None = None,
        refusals: RefusalSink | None = None,
    ) -> None:
        self.spec = spec
        self.publisher = publisher
        self.session = session
        self.policy = policy or RetryPolicy()
        self.limits = limits or BodyLimits()
        self.refusals = refusals or _LogRefusals()
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
        self.polled_at: float | None = None  # monotonic time the last poll ended
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

    async def _attempt(self, url: URL, poll: Poll) -> _Response:
        """One request: the response, or _Retry / _Refused / _Failed / _Fatal."""
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        try:
            async with self.session.get(url, timeout=timeout, allow_redirects=True) as resp:
                poll.quota_remaining = resp.headers.get(QUOTA_REMAINING, poll.quota_remaining)
                poll.quota_used = resp.headers.get(QUOTA_USED, poll.quota_used)
                status = resp.status
                ctype = resp.headers.get("Content-Type", "?")
                if status == 429:
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                    raise _Retry(RATE_LIMITED, "HTTP 429 rate limited", retry_after)
                if status >= 500:
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                    raise _Retry(SERVER_ERROR, f"HTTP {status}", retry_after)
                if status in (401, 403):
                    raise _Fatal(
                        f"HTTP {status}: not authorised (check {self.spec.key_env or 'access'})"
                    )
                if status != 200:
                    raise _Failed(HTTP_ERROR, f"HTTP {status} ({ctype})")
                body = await self._read(resp, ctype)
        except TimeoutError:
            raise _Retry(TIMEOUT, f"timeout after {self.policy.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Retry(CONNECTION_ERROR, self.redact(f"{type(exc).__name__}: {exc}")) from None
        fetched = datetime.now(UTC)
        try:
            doc = await asyncio.to_thread(inspect_body, body, self.limits.max_depth)
        except _Refused as exc:
            exc.reason = f"200 with {exc.reason} ({ctype}, {len(body):,} bytes)"
            raise
        return _Response(body, doc, status, ctype, fetched)

    async def _read(self, resp: aiohttp.ClientResponse, ctype: str) -> bytes:
        """The body, read in chunks and never past the size limit (a refusal beyond it)."""
        limit = self.limits.max_bytes
        declared = resp.content_length
        if declared is not None and declared > limit:
            resp.close()
            raise _Refused(
                PAYLOAD_TOO_LARGE,
                f"200 with a body of {declared:,} bytes (Content-Length, {ctype}) over the"
                f" {limit:,}-byte limit ([collectors] max_payload_bytes); not read",
                retry=False,
            )
        chunks: list[bytes] = []
        got = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            got += len(chunk)
            if got > limit:
                resp.close()
                raise _Refused(
                    PAYLOAD_TOO_LARGE,
                    f"200 with a body over the {limit:,}-byte limit ([collectors]"
                    f" max_payload_bytes; {ctype}): reading stopped at {got:,} bytes",
                    retry=False,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _refuse(
        self, poll: Poll, error_class: str, reason: str, body: bytes = b"", shown: str = ""
    ) -> None:
        at = datetime.now(UTC)
        self.refusals.refuse(
            Refusal(
                error_class,
                self.redact(
                    f"{self.spec.name} poll {poll.number} attempt {poll.attempts}: {reason};"
                    f" GET {shown} at {at.isoformat()}"
                ),
                at,
                body,
                payload_event_id(self.spec.name, body) if body else None,
            )
        )
        poll.refusals += 1

    async def poll_once(self) -> Poll:
        """One poll: request with retries, publish if new, record what was refused, log one
        line. Never raises for anything a server sends."""
        poll = Poll(number=len(self.polls) + 1)
        self.polls.append(poll)
        started = time.monotonic()
        url, shown = self._urls()
        response: _Response | None = None
        while poll.attempts < self.policy.attempts and not self.stop.is_set():
            await self.limiter.wait()
            poll.attempts += 1
            try:
                response = await self._attempt(url, poll)
                break
            except _Fatal as exc:
                poll.outcome = "fatal"
                poll.errors.append(str(exc))
                break
            except _Failed as exc:
                poll.errors.append(exc.reason)
                poll.error_class = exc.error_class
                break
            except _Refused as exc:
                poll.errors.append(exc.reason)
                poll.error_class = exc.error_class
                self._refuse(poll, exc.error_class, exc.reason, exc.body, shown)
                if not exc.retry:
                    poll.outcome = "refused"
                    break
                retry_after = None
            except _Retry as exc:
                poll.errors.append(exc.reason)
                poll.error_class = exc.error_class
                retry_after = exc.retry_after
            if poll.quota_remaining == "0" or poll.attempts >= self.policy.attempts:
                break
            delay = self.policy.backoff(len(poll.delays), self.rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.max_retry_after))
            poll.delays.append(delay)
            log.warning(
                "%s poll %d attempt %d: %s; retrying in %.2fs",
                self.spec.name, poll.number, poll.attempts, poll.errors[-1], delay,
            )  # fmt: skip
            await self._sleep(delay)
        if response is not None:
            await self._store(poll, response, shown)
        elif poll.outcome == "failed" and poll.errors and poll.error_class not in BODY_CLASSES:
            # it ended on no body to store: the poll itself is recorded (a 5xx storm, resets)
            self._refuse(
                poll,
                poll.error_class or CONNECTION_ERROR,
                f"poll failed after {poll.attempts} attempt(s): " + "; ".join(poll.errors),
                shown=shown,
            )
        if poll.quota_remaining == "0":
            self.quota_exhausted = True
            if poll.outcome == "failed":
                poll.outcome = "quota_exhausted"
        self._log(poll, time.monotonic() - started)
        return poll

    async def _store(self, poll: Poll, r: _Response, shown: str) -> None:
        """Publish a new body (timestamp = its fetch time); a broker's refusal is recorded."""
        poll.records = count_records(r.doc)
        digest = payload_event_id(self.spec.name, r.body)
        if digest == self.last_hash:
            poll.outcome = "unchanged"
            return
        request = {"url": shown, "status": str(r.status), "content-type": r.content_type}
        quota = ((QUOTA_REMAINING, poll.quota_remaining), (QUOTA_USED, poll.quota_used))
        request.update({h: v for h, v in quota if v is not None})
        failed = self.publisher.stats.failed
        try:
            self.publisher.publish(
                digest, r.body, r.fetched_at, "application/json", request, timestamp=r.fetched_at
            )
            poll.unacked = await asyncio.to_thread(self.publisher.flush, 30.0)
            refused = self.publisher.stats.failed > failed
            why = "; ".join(self.publisher.stats.errors[-1:]) if refused else ""
        except (KafkaException, BufferError) as exc:
            refused, why = True, str(exc)
        if refused:
            poll.outcome = "failed"
            poll.error_class = BROKER_REFUSED
            poll.errors.append(f"Kafka refused the body: {why}")
            reason = f"Kafka refused a body of {len(r.body):,} bytes: {why}"
            self._refuse(poll, BROKER_REFUSED, reason, r.body, shown)
            return
        self.last_hash = digest
        poll.event_id = digest
        poll.outcome = "published"
        self.published += 1

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
        if poll.refusals:
            what += f", {poll.refusals} recorded on dlq.collect"
        level = logging.INFO if poll.outcome in ("published", "unchanged") else logging.ERROR
        log.log(
            level,
            "%s poll %d: %s records, %s, %s, %d attempt(s), %.2fs",
            self.spec.name, poll.number,
            "?" if poll.records is None else poll.records,
            what, quota, poll.attempts, took,
        )  # fmt: skip

    async def run(self, interval: float, once: bool = False) -> int:
        """Poll every ``interval`` s until stopped: 0 = fine, 1 = last poll failed, 2 = fatal.

        An unexpected error in a poll (a bug, not a response) is logged with its traceback and
        recorded, and polling goes on: one bad poll must not end an always-on collector.
        """
        rc = 0
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                poll = await self.poll_once()
            except Exception as exc:
                log.exception("%s poll %d failed", self.spec.name, len(self.polls))
                self._refuse(self.polls[-1], COLLECTOR_ERROR, f"{type(exc).__name__}: {exc}")
                poll = self.polls[-1]
            self.polled_at = time.monotonic()
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

    def ready(self, interval: float) -> tuple[bool, dict[str, Any]]:
        """/ready: polling on schedule (a poll ended within two periods and a minute of
        retries); a source that answers badly is in ``last_outcome``, not a reason to restart."""
        age = None if self.polled_at is None else time.monotonic() - self.polled_at
        last = self.polls[-1].outcome if self.polls and age is not None else None
        on_time = age is not None and age < 2 * interval + 60
        return on_time, {"source": self.spec.name, "polls": len(self.polls), "last_outcome": last,
                         "since_last_poll_s": None if age is None else round(age, 1)}  # fmt: skip


async def run_http_collector(
    spec: SourceSpec,
    publisher: Sink,
    interval: float,
    once: bool,
    policy: RetryPolicy | None = None,
    install_signals: bool = True,
    api_key: str | None = None,
    limits: BodyLimits | None = None,
    refusals: RefusalSink | None = None,
    health_port: int = 0,
) -> tuple[int, HttpCollector]:
    """Run a poller in this event loop; SIGINT/SIGTERM stop it between (or during) waits.
    ``health_port``: /live and /ready on 127.0.0.1 (the workers' health server)."""
    import signal

    from core.probes import Probe, serve_health

    async with aiohttp.ClientSession(
        headers={"User-Agent": "oddsflow-collector/0.1", "Accept": "application/json"}
    ) as session:
        collector = HttpCollector(
            spec, publisher, session, policy, api_key=api_key, limits=limits, refusals=refusals
        )
        loop = asyncio.get_running_loop()
        if install_signals:
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(s, collector.stop.set)
        probe = Probe("collector", lambda: collector.ready(interval))
        health = asyncio.create_task(serve_health(probe, health_port, f"{spec.name} collector"))
        try:
            rc = await collector.run(interval, once)
        finally:
            health.cancel()
            await asyncio.gather(health, return_exceptions=True)
            if install_signals:
                for s in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(s)
    return rc, collector
