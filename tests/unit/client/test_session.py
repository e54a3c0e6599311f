"""The Python client (Credentials, Session, ApiError) and the ``openims iam`` CLI, over real HTTP.

One uvicorn server on 127.0.0.1 (a free port) in a thread serves the whole module, so the
client and the CLI are exercised exactly as from another host.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from openims.api.app import create_app
from openims.cli import app as cli_app
from openims.client import ApiError, Credentials, Session, TokenCache
from openims.client.token_cache import CachedToken
from openims.runtime import Runtime, bootstrap_runtime, build_runtime
from tests.conftest import ADMIN_PASSWORD, make_settings

Invoke = Callable[..., str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Runtime]]:
    data = tmp_path_factory.mktemp("server")
    rt = build_runtime(make_settings(data / "data", f"sqlite:///{data / 'openims.db'}"))
    bootstrap_runtime(rt)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(rt), log_level="warning", access_log=False, lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", rt
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        rt.close()


@pytest.fixture
def endpoint(server: tuple[str, Runtime]) -> str:
    return server[0]


@pytest.fixture
def creds(endpoint: str) -> Credentials:
    return Credentials(
        endpoint=endpoint, username="admin", password=ADMIN_PASSWORD, domain="admin", project="local-1"
    )


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "tokens.json")


# ---------------------------------------------------------------- Credentials


class TestCredentials:
    def test_defaults(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        c = Credentials.from_env({})
        assert (c.endpoint, c.username, c.domain, c.project, c.password) == (
            "http://127.0.0.1:8080",
            "admin",
            "admin",
            "local-1",
            None,
        )

    def test_env(self) -> None:
        c = Credentials.from_env(
            {
                "OPENIMS_ENDPOINT": "https://ims.example:9/",
                "OPENIMS_USERNAME": "alice",
                "OPENIMS_PASSWORD": "pw",
                "OPENIMS_DOMAIN": "acme",
                "OPENIMS_PROJECT": "",
            }
        )
        assert (c.endpoint, c.username, c.password, c.domain, c.project) == (
            "https://ims.example:9",
            "alice",
            "pw",
            "acme",
            None,
        )
        assert "pw" not in repr(c)

    def test_password_from_admin_credentials_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "admin-credentials").write_text(
            "OS_AUTH_URL=http://x/v3\nOS_USERNAME=admin\nOS_PASSWORD=from-file\n"
        )
        assert Credentials.from_env({}).password == "from-file"
        # Not for another user, and never over an explicit password.
        assert Credentials.from_env({"OPENIMS_USERNAME": "alice"}).password is None
        assert Credentials.from_env({"OPENIMS_PASSWORD": "explicit"}).password == "explicit"
        other = tmp_path / "elsewhere"
        other.write_text("OS_PASSWORD=overridden\n")
        assert Credentials.from_env({"OPENIMS_CREDENTIALS_FILE": str(other)}).password == "overridden"

    def test_scope_by_name_id_or_domain(self) -> None:
        by_name = Credentials(password="p").auth_body()["auth"]["scope"]
        assert by_name == {"project": {"name": "local-1", "domain": {"name": "admin"}}}
        by_id = Credentials(password="p", project="0" * 32).auth_body()["auth"]["scope"]
        assert by_id == {"project": {"id": "0" * 32}}
        assert Credentials(password="p", project=None).auth_body()["auth"]["scope"] == {
            "domain": {"name": "admin"}
        }


# ---------------------------------------------------------------- ApiError


class TestApiError:
    def test_ims_shape(self) -> None:
        r = httpx.Response(
            404,
            json={"error": {"code": "IMG.0027", "message": "no such image"}},
            headers={"X-Request-Id": "abc"},
        )
        e = ApiError.from_response(r)
        assert (e.status, e.code, e.message, e.request_id) == (404, "IMG.0027", "no such image", "abc")
        assert "no such image" in str(e) and "HTTP 404" in str(e) and "abc" in str(e)

    def test_keystone_shape(self) -> None:
        r = httpx.Response(
            401, json={"error": {"code": 401, "title": "Unauthorized", "message": "bad token"}}
        )
        e = ApiError.from_response(r)
        assert (e.status, e.code, e.message, e.request_id) == (401, "401", "bad token", None)

    def test_other_bodies(self) -> None:
        e = ApiError.from_response(
            httpx.Response(400, json={"error_code": "APIGW.0101", "error_msg": "nope"})
        )
        assert (e.code, e.message) == ("APIGW.0101", "nope")
        e = ApiError.from_response(httpx.Response(502, text="Bad gateway from proxy"))
        assert (e.status, e.code, e.message) == (502, "502", "Bad gateway from proxy")


# ---------------------------------------------------------------- Session


class TestSession:
    def test_token_project_and_request(
        self, creds: Credentials, cache: TokenCache, server: tuple[str, Runtime]
    ) -> None:
        with Session(creds, token_cache=cache) as s:
            assert s.token
            with server[1].db.session() as db:
                from sqlalchemy import select

                from openims.db.models import Project

                expected = db.scalar(select(Project.id).where(Project.name == "local-1"))
            assert s.project_id == expected and s.user_id and s.domain_id
            r = s.request("GET", "/v3/auth/projects")
            assert r.status_code == 200 and r.json()["projects"][0]["name"] == "local-1"
            assert s.get(f"{creds.endpoint}/v3/auth/domains").status_code == 200  # absolute URLs too

    def test_token_is_cached_across_sessions(self, creds: Credentials, cache: TokenCache) -> None:
        with Session(creds, token_cache=cache) as s:
            first = s.token
        entry = cache.get(creds.cache_key())
        assert entry is not None and entry.token == first and entry.project_id
        with Session(creds, token_cache=cache) as s:
            assert s.token == first

    def test_refused_cached_token_is_replaced_once(self, creds: Credentials, cache: TokenCache) -> None:
        with Session(creds, token_cache=cache) as s:
            good = s.token
            # A revoked token (as after a password change) still sits in the cache.
            s.request("DELETE", "/v3/auth/tokens", headers={"X-Subject-Token": good}, expect=(204,))
        with Session(creds, token_cache=cache) as s:
            assert s.token == good
            r = s.request("GET", "/v3/auth/projects")
            assert r.status_code == 200 and s.token != good
        fresh = cache.get(creds.cache_key())
        assert fresh is not None and fresh.token not in (good, "")

    def test_bogus_cached_token_is_replaced(self, creds: Credentials, cache: TokenCache) -> None:
        import datetime as dt

        far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
        cache.put(creds.cache_key(), CachedToken(token="not-a-token", expires_at=far, project_id="x"))
        with Session(creds, token_cache=cache) as s:
            assert s.request("GET", "/v3/auth/domains").status_code == 200
            assert s.token != "not-a-token" and s.project_id != "x"

    def test_errors(self, creds: Credentials, cache: TokenCache) -> None:
        with Session(creds, token_cache=cache) as s:
            with pytest.raises(ApiError) as keystone:
                s.request("GET", f"/v3/users/{'0' * 32}")
            assert keystone.value.status == 404 and keystone.value.code == "404" and keystone.value.request_id
            with pytest.raises(ApiError) as ims:
                s.request("GET", "/v2/no-such-route")
            assert ims.value.status == 404 and ims.value.code.startswith("IMG.")
            # ``expect`` widens what counts as success.
            assert s.request("GET", f"/v3/users/{'0' * 32}", expect=(404,)).status_code == 404

    def test_wrong_password_is_not_retried(self, creds: Credentials) -> None:
        bad = Credentials(endpoint=creds.endpoint, password="Wrong-pass-1")
        with Session(bad, token_cache=TokenCache.in_memory()) as s, pytest.raises(ApiError) as exc:
            s.request("GET", "/v3/auth/projects")
        assert exc.value.status == 401 and "wrong" in exc.value.message

    def test_no_password_and_no_server(self) -> None:
        with (
            Session(
                Credentials(endpoint="http://127.0.0.1:9", password=None), token_cache=TokenCache.in_memory()
            ) as s,
            pytest.raises(ApiError) as exc,
        ):
            _ = s.token
        assert exc.value.status == 0 and "OPENIMS_PASSWORD" in exc.value.message
        with (
            Session(
                Credentials(endpoint="http://127.0.0.1:9", password="x"),
                timeout=2,
                token_cache=TokenCache.in_memory(),
            ) as s,
            pytest.raises(ApiError) as exc,
        ):
            _ = s.token
        assert exc.value.status == 0 and exc.value.code == "ConnectionError"


# ---------------------------------------------------------------- CLI


class TestCli:
    @pytest.fixture
    def run(self, endpoint: str, tmp_path: Path) -> Iterator[Invoke]:
        runner = CliRunner()
        env = {
            "OPENIMS_ENDPOINT": endpoint,
            "OPENIMS_PASSWORD": ADMIN_PASSWORD,
            "OPENIMS_TOKEN_CACHE": str(tmp_path / "tokens.json"),
            "COLUMNS": "200",
        }

        def invoke(*args: str, code: int = 0, input: str | None = None) -> str:
            result = runner.invoke(cli_app, ["iam", *args], env=env, input=input)
            assert result.exit_code == code, (args, result.output)
            return result.output

        yield invoke

    def test_project_user_group_grant_flow(self, run: Invoke, endpoint: str) -> None:
        run("project", "create", "local-1_cli", "--description", "from the CLI")
        projects = json.loads(run("project", "list", "--json"))
        assert "local-1_cli" in {p["name"] for p in projects}
        assert "local-1_cli" in run("project", "list")
        run("user", "create", "cliuser", "--password", "Cli-pass-1234")
        run("group", "create", "cli-readers")
        run("group", "add-user", "cli-readers", "cliuser")
        assert [u["name"] for u in json.loads(run("group", "users", "cli-readers", "--json"))] == ["cliuser"]
        run("grant", "add", "cli-readers", "readonly", "--project", "local-1_cli")
        grants = json.loads(run("grant", "list", "--group", "cli-readers", "--json"))
        assert [(g["role"], g["target"]) for g in grants] == [("readonly", "project local-1_cli")]
        # The new user can now work in the project through the same client.
        user = Credentials(
            endpoint=endpoint, username="cliuser", password="Cli-pass-1234", project="local-1_cli"
        )
        with Session(user, token_cache=TokenCache.in_memory()) as s:
            assert s.request("GET", "/v3/auth/projects").json()["projects"][0]["name"] == "local-1_cli"
        shown = json.loads(run("user", "show", "cliuser", "--json"))
        assert shown["groups"] == ["cli-readers"]
        run("user", "update", "cliuser", "--disable")
        assert json.loads(run("user", "list", "--disabled", "--json"))[0]["name"] == "cliuser"
        run("grant", "remove", "cli-readers", "readonly", "--project", "local-1_cli")
        assert json.loads(run("grant", "list", "--group", "cli-readers", "--json")) == []
        run("group", "remove-user", "cli-readers", "cliuser")
        run("group", "delete", "cli-readers")
        run("user", "delete", "cliuser")
        run("project", "update", "local-1_cli", "--status", "suspended")
        assert json.loads(run("project", "show", "local-1_cli", "--json"))["status"] == "suspended"
        run("project", "delete", "local-1_cli")
        roles = json.loads(run("role", "list", "--json"))
        assert "readonly" in {r["name"] for r in roles}

    def test_domain_and_all_projects_grants(self, run: Invoke) -> None:
        run("group", "create", "cli-auditors")
        run("grant", "add", "cli-auditors", "secu_admin", "--domain")
        run("grant", "add", "cli-auditors", "ims_readonly", "--all-projects")
        grants = json.loads(run("grant", "list", "--group", "cli-auditors", "--json"))
        assert sorted((g["role"], g["target"]) for g in grants) == [
            ("ims_readonly", "all projects"),
            ("secu_admin", "domain"),
        ]
        assert len(json.loads(run("grant", "list", "--group", "cli-auditors", "--domain", "--json"))) == 1
        run("group", "delete", "cli-auditors")

    def test_errors_are_one_line_and_exit_1(self, run: Invoke) -> None:
        out = run("project", "create", "no-region-prefix", code=1)
        assert "error:" in out and "local-1_" in out and "Traceback" not in out
        out = run("user", "show", "nobody-here", code=1)
        assert "No user named" in out
        out = run("grant", "add", "admin", "readonly", code=1)
        assert "exactly one of" in out

    def test_bad_password_and_unreachable(self, endpoint: str, tmp_path: Path) -> None:
        runner = CliRunner()
        env = {
            "OPENIMS_ENDPOINT": endpoint,
            "OPENIMS_PASSWORD": "Wrong-pass-1",
            "OPENIMS_TOKEN_CACHE": str(tmp_path / "t.json"),
        }
        result = runner.invoke(cli_app, ["iam", "project", "list"], env=env)
        assert result.exit_code == 1 and "HTTP 401" in result.output and "Traceback" not in result.output
        env["OPENIMS_ENDPOINT"] = "http://127.0.0.1:9"
        result = runner.invoke(cli_app, ["iam", "project", "list"], env=env)
        assert result.exit_code == 1 and "Cannot reach" in result.output

    def test_own_password_change(self, run: Invoke, endpoint: str, tmp_path: Path) -> None:
        run("user", "create", "pwuser", "--password", "First-pass-123")
        run("group", "create", "pw-group")
        run("group", "add-user", "pw-group", "pwuser")
        run("grant", "add", "pw-group", "readonly", "--project", "local-1")
        runner = CliRunner()
        env = {
            "OPENIMS_ENDPOINT": endpoint,
            "OPENIMS_USERNAME": "pwuser",
            "OPENIMS_PASSWORD": "First-pass-123",
            "OPENIMS_TOKEN_CACHE": str(tmp_path / "pw.json"),
        }
        result = runner.invoke(cli_app, ["iam", "user", "password", "--new", "Second-pass-456"], env=env)
        assert result.exit_code == 0, result.output
        env["OPENIMS_PASSWORD"] = "Second-pass-456"
        time.sleep(0.01)  # a new token must be issued after the revocation instant
        result = runner.invoke(cli_app, ["iam", "user", "show", "pwuser", "--json"], env=env)
        # Not an administrator: reading others is refused, but logging in with the new password works.
        assert result.exit_code == 1 and "HTTP 403" in result.output
        run("user", "delete", "pwuser")
        run("group", "delete", "pw-group")
