"""Rate limits (issue 16, item 4) through HTTP: logins per user and per source, signature failures per
access key, token issuance per user; 429 with Retry-After in the route family's shape, windows that end,
counters shared by two processes on one PostgreSQL database, and a counter store that fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openims.api.app import create_app
from openims.clock import ManualClock
from openims.config import Rate, parse_rate
from openims.db.models import RateCounter, User
from openims.db.session import Database
from openims.iam.ratelimit import Limit, RateLimiter
from openims.runtime import Runtime, bootstrap_runtime, build_runtime
from tests.api.test_signed_requests import Signed, new_key, refused
from tests.conftest import ADMIN_PASSWORD, PG, _truncate, login, make_settings, password_auth

LIMITS = {"rate_login_per_user": "3/min", "rate_login_per_source": "8/min",
          "rate_signature_failures_per_key": "3/min", "rate_signature_failures_per_source": "100/min",
          "rate_tokens_per_user": "5/min"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(LIMITS)


@pytest.fixture(autouse=True)
def window_start(clock: ManualClock) -> None:
    # 10 s into a minute: every one-minute window of these tests has 50 s left.
    clock.now = clock.now.replace(second=10, microsecond=0)


def token(client: TestClient, user: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Response:
    return client.post("/v3/auth/tokens?nocatalog=1", json=password_auth(user, password))


def assert_limited(r: httpx.Response, retry_after: int, text: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == str(retry_after)
    err = r.json()["error"]
    assert err["code"] == 429 and err["title"] == "Too Many Requests" and text in err["message"], err
    assert set(err) == {"code", "title", "message"}


class TestPasswordLogins:
    def test_the_limit_per_user_name_is_429_with_retry_after(self, client: TestClient, runtime: Runtime,
                                                             clock: ManualClock) -> None:
        for _ in range(3):
            assert token(client).status_code == 201
        assert_limited(token(client), 50, "for this user")
        clock.advance(20)
        assert_limited(token(client), 30, "for this user")
        # Another user (here: a name nobody has) is counted apart.
        assert token(client, "nobody", "x").status_code == 401

    def test_the_window_resets(self, client: TestClient, clock: ManualClock) -> None:
        for _ in range(3):
            assert token(client).status_code == 201
        assert token(client).status_code == 429
        clock.advance(50)  # the next minute
        assert token(client).status_code == 201

    def test_wrong_passwords_count_and_a_limited_attempt_is_no_failed_login(
            self, client: TestClient, runtime: Runtime, clock: ManualClock) -> None:
        assert token(client, password="wrong").status_code == 401
        assert token(client, password="wrong").status_code == 401
        assert token(client).status_code == 201  # resets the lockout counter
        # Past the limit: refused before the password is checked, right or wrong; not failed logins
        # (five would lock the user out: OPENIMS_LOGIN_MAX_FAILURES).
        for _ in range(8):
            assert token(client, password="wrong").status_code == 429
        with runtime.db.transaction(readonly=True) as s:
            admin = s.scalars(select(User).where(User.name == "admin")).one()
            assert admin.failed_logins == 0 and admin.locked_until is None
        clock.advance(60)
        assert token(client).status_code == 201

    def test_an_unknown_user_name_is_limited_too(self, client: TestClient) -> None:
        for _ in range(3):
            assert token(client, "ghost", "x").status_code == 401
        assert_limited(token(client, "ghost", "x"), 50, "for this user")

    def test_one_source_across_many_user_names(self, client: TestClient, clock: ManualClock) -> None:
        # TestClient calls come from one address ("testclient"): 8 logins a minute from it.
        for i in range(8):
            assert token(client, f"user-{i}", "x").status_code == 401
        assert_limited(token(client, "user-99", "x"), 50, "from this address")
        assert_limited(token(client), 50, "from this address")
        clock.advance(50)
        assert token(client).status_code == 201

    def test_failures_do_not_count_against_the_token_limit(self, client: TestClient) -> None:
        # The token limit counts tokens issued, after the password was checked.
        assert token(client, password="wrong").status_code == 401
        assert token(client, password="wrong").status_code == 401
        assert token(client).status_code == 201


class TestTokenIssuance:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**LIMITS, "rate_login_per_user": "100/min", "rate_login_per_source": "100/min"}

    def test_tokens_per_user_count_password_and_token_methods(self, client: TestClient,
                                                              clock: ManualClock) -> None:
        first = login(client)
        for _ in range(3):
            assert token(client).status_code == 201
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": first}},
                            "scope": {"project": {"name": "local-1", "domain": {"name": "admin"}}}}}
        assert client.post("/v3/auth/tokens", json=rescope).status_code == 201  # the fifth
        assert_limited(client.post("/v3/auth/tokens", json=rescope), 50, "tokens issued for this user")
        assert_limited(token(client), 50, "tokens issued for this user")
        clock.advance(50)
        assert client.post("/v3/auth/tokens", json=rescope).status_code == 201


class TestSignatureFailures:
    @pytest.fixture
    def signed(self, client: TestClient, runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[Signed]:
        r = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token": admin_headers["X-Auth-Token"]})
        user_id, project_id = r.json()["token"]["user"]["id"], r.json()["token"]["project"]["id"]
        ak, sk = new_key(client, admin_headers, user_id)
        yield Signed(client, runtime, ak, sk, project_id=project_id)

    def test_failures_per_access_key(self, client: TestClient, runtime: Runtime, signed: Signed,
                                     clock: ManualClock) -> None:
        wrong = Signed(client, runtime, signed.ak, signed.sk[::-1], project_id=signed.project_id)
        assert signed("GET", "/v2/cloudimages").status_code == 200  # successes count nothing
        for _ in range(3):
            refused(wrong("GET", "/v2/cloudimages"), 401, "APIGW.0301")
        # Now even the right secret is refused until the window ends: the gateway's throttling shape.
        r = signed("GET", "/v2/cloudimages")
        refused(r, 429, "APIGW.0308", "with this access key")
        assert r.headers["Retry-After"] == "50"
        # On IAM routes alike (a signed request is answered as the gateway does, whatever the route).
        r = signed("GET", "/v3/projects")
        refused(r, 429, "APIGW.0308")
        clock.advance(50)
        assert signed("GET", "/v2/cloudimages").status_code == 200

    def test_another_key_is_counted_apart(self, client: TestClient, runtime: Runtime, signed: Signed,
                                          admin_headers: dict[str, str]) -> None:
        wrong = Signed(client, runtime, signed.ak, signed.sk[::-1], project_id=signed.project_id)
        for _ in range(3):
            refused(wrong("GET", "/v2/cloudimages"), 401, "APIGW.0301")
        user_id = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token":
                                                         admin_headers["X-Auth-Token"]}).json()["token"]["user"]["id"]
        ak2, sk2 = new_key(client, admin_headers, user_id)
        other = Signed(client, runtime, ak2, sk2, project_id=signed.project_id)
        assert other("GET", "/v2/cloudimages").status_code == 200

    def test_failures_per_source(self, client: TestClient, runtime: Runtime) -> None:
        runtime.limits._rates[Limit.SIGNATURE_SOURCE] = Rate(4, 60)
        for i in range(4):
            # Unknown keys, each another: only the address ties them together.
            refused(Signed(client, runtime, f"UNKNOWNKEY{i}", "secret")("GET", "/v2/cloudimages"), 401)
        r = Signed(client, runtime, "UNKNOWNKEY99", "secret")("GET", "/v2/cloudimages")
        refused(r, 429, "APIGW.0308", "from this address")
        assert r.headers["Retry-After"] == "50"


class TestSettings:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**LIMITS, "rate_login_per_user": "off", "rate_login_per_source": "off", "rate_tokens_per_user": "0"}

    def test_a_limit_turned_off_counts_nothing(self, client: TestClient, runtime: Runtime) -> None:
        for _ in range(12):
            assert token(client).status_code == 201
        with runtime.db.transaction(readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(RateCounter)) == 0

    def test_defaults_are_real_limits(self) -> None:
        from openims.config import Settings

        defaults = Settings()
        for name in LIMITS:
            rate = parse_rate(getattr(defaults, name))
            assert rate is not None and rate.count >= 100 and rate.seconds == 60, name

    def test_a_bad_rate_is_refused_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="rate_login_per_user"):
            make_settings(tmp_path, rate_login_per_user="lots")


def test_a_failing_counter_store_lets_requests_through(client: TestClient, runtime: Runtime) -> None:
    # The counters' database is unreachable (nothing listens on port 1): logged, and let through.
    runtime.limits.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", busy_timeout=1)
    for _ in range(6):
        assert token(client).status_code == 201
    assert token(client, password="wrong").status_code == 401
    wrong = Signed(client, runtime, "UNKNOWNKEY", "secret")
    for _ in range(5):
        refused(wrong("GET", "/v2/cloudimages"), 401, "APIGW.0301")


def test_old_windows_are_pruned(client: TestClient, runtime: Runtime, clock: ManualClock) -> None:
    assert token(client).status_code == 201
    clock.advance(3600)
    runtime.limits._last_prune = 0.0
    assert token(client).status_code == 201
    with runtime.db.transaction(readonly=True) as s:
        ends = s.scalars(select(RateCounter.window_end)).all()
    assert ends and all(end > clock().timestamp() for end in ends)


@pytest.mark.skipif(not PG, reason="PostgreSQL is not reachable")
def test_two_processes_on_one_postgresql_share_the_counters(tmp_path: Path, pg_database: str) -> None:
    _truncate(pg_database)
    clock = ManualClock(dt.datetime(2026, 12, 5, 13, 0, 10, tzinfo=dt.UTC))
    runtimes = [build_runtime(make_settings(tmp_path / f"p{i}", pg_database, **LIMITS), clock, upgrade=False)
                for i in range(2)]
    try:
        for rt in runtimes:
            bootstrap_runtime(rt)
        with TestClient(create_app(runtimes[0]), raise_server_exceptions=False) as one, \
                TestClient(create_app(runtimes[1]), raise_server_exceptions=False) as two:
            assert token(one).status_code == 201
            assert token(two).status_code == 201
            assert token(one).status_code == 201
            assert_limited(token(two), 50, "for this user")  # the fourth, counted by both processes
            assert_limited(token(one), 50, "for this user")
            clock.advance(50)
            assert token(two).status_code == 201
    finally:
        for rt in runtimes:
            rt.close()


def test_limiter_counts_atomically_on_each_database(runtime: Runtime, clock: ManualClock) -> None:
    import threading

    limiter = RateLimiter(runtime.db, clock, {Limit.LOGIN_USER: Rate(1000, 60)})
    threads = [threading.Thread(target=lambda: [limiter.hit([(Limit.LOGIN_USER, "k")]) for _ in range(10)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with runtime.db.transaction(readonly=True) as s:
        assert s.scalar(select(RateCounter.count)) == 40


class TestSourceBehindABalancer:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**LIMITS, "rate_login_per_user": "100/min", "rate_login_per_source": "2/min",
                "trusted_proxies": "10.0.0.0/24"}

    def balancer(self, runtime: Runtime, peer: str) -> TestClient:
        return TestClient(create_app(runtime), raise_server_exceptions=False, client=(peer, 40000))

    def test_clients_behind_a_trusted_balancer_are_counted_apart(self, runtime: Runtime) -> None:
        with self.balancer(runtime, "10.0.0.5") as lb:
            for client_address in ("203.0.113.7", "203.0.113.8"):
                headers = {"X-Forwarded-For": f"198.51.100.1, {client_address}"}  # the left one is the client's word
                for _ in range(2):
                    r = lb.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD), headers=headers)
                    assert r.status_code == 201, r.text
                r = lb.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD), headers=headers)
                assert_limited(r, 50, "from this address")

    def test_forwarded_for_from_an_untrusted_peer_is_ignored(self, runtime: Runtime) -> None:
        with self.balancer(runtime, "192.0.2.9") as direct:
            for i in range(2):
                r = direct.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD),
                                headers={"X-Forwarded-For": f"203.0.113.{i}"})
                assert r.status_code == 201
            r = direct.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD),
                            headers={"X-Forwarded-For": "203.0.113.99"})
            assert_limited(r, 50, "from this address")
