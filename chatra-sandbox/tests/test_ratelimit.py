"""The per key pair rate limit: even pacing passes, bursts past the tolerance get 429."""

from __future__ import annotations

import time

import pytest

from chatra_sandbox.config import SandboxConfig
from chatra_sandbox.ratelimit import BURST_TOLERANCE, RateLimiter, SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_client_paced_exactly_at_the_limit_is_never_refused():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)
    for _ in range(1000):
        assert limiter.check("k") is None
        clock.now += 1.0


def test_slightly_jittered_pacing_is_tolerated():
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock)
    for step in range(500):
        clock.now = 1000.0 + step * 0.5 + (0.3 if step % 2 else -0.3)
        assert limiter.check("k") is None


def test_burst_beyond_tolerance_is_refused_with_wait():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)
    for _ in range(1 + BURST_TOLERANCE):
        assert limiter.check("k") is None
    wait = limiter.check("k")
    assert wait == pytest.approx(1.0)
    assert limiter.check("other") is None
    clock.now += wait
    assert limiter.check("k") is None
    assert limiter.check("k") is not None


def test_sustained_excess_is_held_to_the_limit():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)
    allowed = 0
    for _ in range(600):  # 10 requests per second for 60 seconds
        allowed += limiter.check("k") is None
        clock.now += 0.1
    assert 60 <= allowed <= 60 + 1 + BURST_TOLERANCE


def test_limiter_needs_a_positive_rate():
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_http_429_with_retry_after(make_api):
    api = make_api(requests_per_minute=6)
    message_id = api.server.ids("messages")[0]
    statuses = [api.get(f"/messages/{message_id}").status_code for _ in range(1 + BURST_TOLERANCE)]
    assert statuses == [200] * (1 + BURST_TOLERANCE)
    response = api.get(f"/messages/{message_id}")
    assert response.status_code == 429
    assert response.json()["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 10
    assert api.server.request_log()[-1]["fault"] == "rate_limit"


def test_http_429_without_retry_after_when_disabled(make_api):
    api = make_api(requests_per_minute=6, retry_after=False)
    responses = [api.get("/clients/x") for _ in range(2 + BURST_TOLERANCE)]
    assert responses[-1].status_code == 429
    assert "Retry-After" not in responses[-1].headers


def test_retry_after_rounds_up_to_whole_seconds(make_api):
    api = make_api(requests_per_minute=6)  # one request per 10 s
    responses = [api.get("/clients/x") for _ in range(2 + BURST_TOLERANCE)]
    # The next slot is 10 s minus the moments these requests took, so whole seconds round up.
    assert responses[-1].headers["Retry-After"] in {"9", "10"}


def test_unauthenticated_and_admin_requests_do_not_use_the_budget(make_api):
    api = make_api(requests_per_minute=6)
    for _ in range(5):
        assert api.admin("GET", "/requests").status_code == 200
        assert (
            api.session.get(
                api.server.api_url + "/clients/x", headers={"Authorization": ""}, timeout=10
            ).status_code
            == 401
        )
    assert [api.get("/clients/x").status_code for _ in range(3)] == [404, 404, 404]
    assert [e["status"] for e in api.server.request_log()] == [401] * 5 + [404] * 3


def test_paced_http_client_at_the_limit_never_sees_429(make_api):
    api = make_api(requests_per_minute=600)  # one request every 100 ms
    message_id = api.server.ids("messages")[0]
    sent = time.monotonic() - 1
    for _ in range(10):
        time.sleep(max(0.0, sent + 0.1 - time.monotonic()))
        sent = time.monotonic()
        assert api.get(f"/messages/{message_id}").status_code == 200


def test_rate_limit_can_change_at_runtime(make_api):
    api = make_api()
    assert all(api.get("/clients/x").status_code == 404 for _ in range(10))
    api.server.configure(requests_per_minute=6)
    assert [api.get("/clients/x").status_code for _ in range(4)][-1] == 429
    api.server.configure(requests_per_minute=0)
    assert api.get("/clients/x").status_code == 404


def test_sliding_window_refuses_even_pacing_exactly_at_the_limit():
    # 20 per 10 s, sent exactly one every 0.5 s; the first arrived 10 ms late (latency), so
    # the 21st falls inside the window that holds the first: a strict count refuses it,
    # where GCRA's tolerance would not.
    clock = FakeClock()
    limiter = SlidingWindowLimiter(120, window=10, clock=clock)
    answers = []
    for step in range(21):
        clock.now = 1000.0 + step * 0.5 + (0.01 if step == 0 else 0)
        answers.append(limiter.check("k"))
    assert answers[:20] == [None] * 20
    assert answers[20] == pytest.approx(0.01)


def test_sliding_window_allows_the_limit_in_any_window_and_says_when_to_retry():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(60, window=5, clock=clock)  # 5 per 5 s
    assert limiter.limit == 5
    assert [limiter.check("k") for _ in range(5)] == [None] * 5
    clock.now += 2.0
    assert limiter.check("k") == pytest.approx(3.0)
    assert limiter.check("other") is None
    clock.now += 3.0
    assert limiter.check("k") is None
    assert limiter.check("k") is None  # the rest of the first five left together
    assert limiter.check("k") is None
    assert limiter.check("k") is None
    assert limiter.check("k") is None
    assert limiter.check("k") is not None


def test_sliding_window_paced_a_little_under_the_limit_is_never_refused():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(120, window=10, clock=clock)
    for _ in range(1000):
        assert limiter.check("k") is None
        clock.now += 0.5 / 0.975


def test_sliding_window_needs_room_for_one_request():
    with pytest.raises(ValueError, match="at least one request"):
        SlidingWindowLimiter(6, window=5)


def test_sliding_window_mode_over_http(make_api):
    api = make_api(requests_per_minute=120, rate_limit_mode="sliding_window", rate_limit_window=1)
    statuses = [api.get("/clients/x").status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    assert api.server.request_log()[-1]["fault"] == "rate_limit"
    assert api.server.config()["rate_limit_mode"] == "sliding_window"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit_mode": "leaky"}, "rate_limit_mode must be one of"),
        ({"rate_limit_window": 0}, "rate_limit_window must be positive"),
        ({"rate_limit_window": "60"}, "rate_limit_window must be a number"),
        (
            {"rate_limit_mode": "sliding_window", "rate_limit_window": 1, "requests_per_minute": 6},
            "too short",
        ),
    ],
)
def test_sliding_window_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        SandboxConfig().updated(**options)
