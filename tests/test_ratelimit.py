"""The process-wide limiter of Hub calls: buckets learnt from the Hub's headers, waits instead of failures."""

from __future__ import annotations

import threading

import pytest

from fingerprint.errors import Cancelled
from fingerprint.sources.ratelimit import HubRateLimiter, RateLimitWait

HUB = "http://hub.test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def limiter() -> tuple[HubRateLimiter, FakeClock]:
    clock = FakeClock()
    return HubRateLimiter(clock=clock, sleep=clock.sleep), clock


def test_anonymous_quota_is_used_then_the_caller_waits_for_the_window():
    lim, clock = limiter()
    for _ in range(3000):
        assert lim.acquire(HUB, None, "resolvers") == 0.0
    waits: list[RateLimitWait] = []
    waited = lim.acquire(HUB, None, "resolvers", on_wait=waits.append)
    assert waited == pytest.approx(300.0, abs=0.5) and clock.slept == pytest.approx(300.0, abs=0.5)
    assert waits and waits[0].seconds == pytest.approx(300.0)
    msg = waits[0].message
    assert msg.startswith("waiting 300 s for the Hub's rate limit") and "3,000 file requests per 5 min" in msg
    assert "a token raises it" in msg


def test_api_and_resolver_buckets_are_separate_and_per_identity():
    lim, _ = limiter()
    for _ in range(500):
        lim.acquire(HUB, None, "api")
    assert lim.remaining(HUB, None, "api") == 0
    assert lim.remaining(HUB, None, "resolvers") == 3000
    assert lim.remaining(HUB, "Bearer hf_x", "api") == 1000  # a free account's quota, counted apart
    assert lim.remaining("http://other.test", None, "api") == 500


def test_headers_teach_remaining_reset_and_quota():
    lim, _clock = limiter()
    headers = {"RateLimit": '"resolvers";r=2;t=40', "RateLimit-Policy": '"fixed window";"resolvers";q=5000;w=300'}
    lim.observe(HUB, None, "resolvers", headers, 200)
    assert lim.remaining(HUB, None, "resolvers") == 2
    lim.acquire(HUB, None, "resolvers")
    lim.acquire(HUB, None, "resolvers")
    waited = lim.acquire(HUB, None, "resolvers")
    assert waited == pytest.approx(40.0, abs=0.5)
    assert lim.remaining(HUB, None, "resolvers") == 5000 - 1  # the learnt quota after the reset


def test_429_with_retry_after_empties_the_bucket_until_then():
    lim, _ = limiter()
    lim.observe(HUB, None, "api", {"Retry-After": "12"}, 429)
    assert lim.remaining(HUB, None, "api") == 0
    assert lim.acquire(HUB, None, "api") == pytest.approx(12.0, abs=0.5)


def test_bare_429_teaches_nothing():
    lim, _ = limiter()
    lim.observe(HUB, None, "resolvers", {}, 429)
    assert lim.remaining(HUB, None, "resolvers") == 3000


def test_cancel_ends_a_wait():
    clock = FakeClock()
    cancel = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.slept > 5:
            cancel.set()  # the user presses Stop five seconds into the wait

    lim = HubRateLimiter(clock=clock, sleep=sleep)
    lim.observe(HUB, None, "resolvers", {"Retry-After": "300"}, 429)
    with pytest.raises(Cancelled):
        lim.acquire(HUB, None, "resolvers", cancel=cancel)
    assert clock.slept < 10


def test_the_credential_is_never_a_key():
    lim, _ = limiter()
    lim.acquire(HUB, "Bearer hf_secret_token", "api")
    assert not any("hf_secret_token" in part for key in lim._buckets for part in key)
