"""One limiter per process for the Hub's request quotas, shared by every job and every dashboard visitor.

The Hub counts requests in fixed 5-minute windows, per IP (per account with a token), in separate
buckets: "api" (model_info and other /api/ calls) and "resolvers" (every URL with /resolve/). Its
answers say how many calls are left and when the window resets (``RateLimit: "resolvers";r=R;t=T``,
``RateLimit-Policy: "fixed window";"resolvers";q=Q;w=W``; ``Retry-After`` on a 429). The limiter
starts from the published anonymous quotas, learns the real ones from those headers, and makes a
caller wait - visibly and cancellably - rather than fail when a call would exceed the quota.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from huggingface_hub.utils import parse_ratelimit_headers

from ..errors import Cancelled

WINDOW = 300.0  # seconds: the Hub's fixed window
ANONYMOUS_QUOTA = {"api": 500, "resolvers": 3000}
TOKEN_QUOTA = {"api": 1000, "resolvers": 5000}  # a free account; PRO and organisations get more (learnt from headers)
WHAT = {"api": "API calls", "resolvers": "file requests"}
POLL = 0.25  # seconds between checks of the cancel flag while waiting


@dataclass(frozen=True)
class RateLimitWait:
    """A caller is waiting for a bucket's window to reset."""

    bucket: str
    seconds: float  # left to wait
    quota: int
    window: float
    anonymous: bool

    @property
    def message(self) -> str:
        who = "anonymous" if self.anonymous else "this token"
        per = f"{self.window / 60:g} min" if self.window >= 60 else f"{self.window:g} s"
        hint = "; a token raises it" if self.anonymous else ""
        return (
            f"waiting {self.seconds:.0f} s for the Hub's rate limit "
            f"({who}: {self.quota:,} {WHAT.get(self.bucket, self.bucket)} per {per}{hint})"
        )


WaitFn = Callable[[RateLimitWait], None]


class _Bucket:
    def __init__(self, quota: int, window: float, now: float) -> None:
        self.quota = quota
        self.window = window
        self.remaining = quota
        self.reset_at = now + window


class HubRateLimiter:
    """Counts calls per (endpoint, identity, bucket); waits when a window's quota is used up.

    ``credential`` is the Authorization header a request carries (None: anonymous): the Hub counts
    anonymous calls per IP and authenticated ones per account."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def _bucket(self, endpoint: str, credential: str | None, name: str) -> _Bucket:
        key = (endpoint.rstrip("/"), identity(credential), name)
        now = self._clock()
        b = self._buckets.get(key)
        if b is None:
            quotas = ANONYMOUS_QUOTA if credential is None else TOKEN_QUOTA
            b = self._buckets[key] = _Bucket(quotas.get(name, ANONYMOUS_QUOTA["api"]), WINDOW, now)
        elif now >= b.reset_at:
            b.remaining, b.reset_at = b.quota, now + b.window
        return b

    def acquire(
        self,
        endpoint: str,
        credential: str | None,
        bucket: str,
        *,
        cancel: threading.Event | None = None,
        on_wait: WaitFn | None = None,
    ) -> float:
        """Take one call from the bucket, waiting for the window to reset when none is left.
        Returns the seconds waited; raises Cancelled when ``cancel`` is set during the wait."""
        waited = 0.0
        while True:
            with self._lock:
                b = self._bucket(endpoint, credential, bucket)
                if b.remaining > 0:
                    b.remaining -= 1
                    return waited
                left = max(b.reset_at - self._clock(), 0.0)
                wait = RateLimitWait(bucket, left, b.quota, b.window, credential is None)
            if on_wait is not None:
                on_wait(wait)
            step = min(left, POLL) or POLL / 10
            if cancel is not None and cancel.wait(0):
                raise Cancelled("cancelled while waiting for the Hub's rate limit")
            self._sleep(step)
            waited += step

    def observe(
        self, endpoint: str, credential: str | None, bucket: str, headers: Mapping[str, str], status: int
    ) -> None:
        """Learn from an answer to a call of ``bucket``: the remaining calls, reset time and quota the
        headers give; a 429 with Retry-After empties the bucket until then. A bare 429 (no headers)
        teaches nothing: the caller retries it like any transient failure."""
        info = parse_ratelimit_headers(headers)
        retry_after = _seconds(headers.get("Retry-After"))
        if info is None and (status != 429 or retry_after is None):
            return
        with self._lock:
            b = self._bucket(endpoint, credential, info.resource_type if info is not None else bucket)
            now = self._clock()
            if info is not None:
                if info.limit:
                    b.quota = info.limit
                if info.window_seconds:
                    b.window = float(info.window_seconds)
                b.remaining = info.remaining
                b.reset_at = now + info.reset_in_seconds
            if status == 429:
                b.remaining = 0
                if retry_after is not None:
                    b.reset_at = now + retry_after

    def remaining(self, endpoint: str, credential: str | None, bucket: str) -> int:
        with self._lock:
            return self._bucket(endpoint, credential, bucket).remaining


def identity(credential: str | None) -> str:
    """Who a request counts for: "anonymous", or a digest of its credential (never the credential itself)."""
    return "anonymous" if credential is None else hashlib.sha256(credential.encode()).hexdigest()[:16]


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


_LIMITER = HubRateLimiter()


def rate_limiter() -> HubRateLimiter:
    """The process-wide limiter: every model, job and dashboard visitor draws from the same buckets."""
    return _LIMITER
