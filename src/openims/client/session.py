"""An authenticated HTTP session against an openims (or IMS/IAM-compatible) endpoint.

``Session`` logs in with a password, caches the token (see ``token_cache``), adds
``X-Auth-Token`` to every request, retries once with a fresh token when a cached one is refused,
and turns error responses of either wire shape into ``ApiError``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from openims import __version__
from openims.client.token_cache import CachedToken, CacheKey, TokenCache

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_USERNAME = "admin"
DEFAULT_DOMAIN = "admin"
DEFAULT_PROJECT = "local-1"
DEFAULT_CREDENTIALS_FILE = Path("data") / "admin-credentials"
DEFAULT_EXPECT = (200, 201, 202, 204)

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class ApiError(Exception):
    """An error answer from the service (or, with ``status`` 0, no answer at all)."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        details = [f"HTTP {self.status}" if self.status else "no response"]
        if self.code != str(self.status):
            details.append(self.code)
        if self.request_id:
            details.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(details)})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Parse IMS ``{"error": {"code": "IMG.x", ...}}``, Keystone ``{"error": {"code": 401, "title"...}}``
        and the APIG ``{"error_code": ..., "error_msg": ...}`` shapes; fall back to the raw text."""
        request_id = response.headers.get("x-request-id") or response.headers.get("x-openstack-request-id")
        code: str = str(response.status_code)
        message = response.reason_phrase or "error"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                code = str(err.get("code", code))
                message = str(err.get("message") or err.get("title") or message)
            elif "error_code" in body or "error_msg" in body:
                code = str(body.get("error_code", code))
                message = str(body.get("error_msg") or message)
            elif isinstance(body.get("message"), str):
                message = body["message"]
        elif response.text:
            message = response.text.strip()[:500]
        return cls(response.status_code, code, message, request_id)


def _read_credentials_password(path: Path, username: str) -> str | None:
    """``OS_PASSWORD`` from the file ``openims serve`` writes, if it is for this user."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if values.get("OS_USERNAME", username) != username:
        return None
    return values.get("OS_PASSWORD") or None


@dataclass(frozen=True)
class Credentials:
    endpoint: str = DEFAULT_ENDPOINT
    username: str = DEFAULT_USERNAME
    password: str | None = field(default=None, repr=False)
    domain: str = DEFAULT_DOMAIN
    # A project name or id; None asks for a token scoped to the domain (account) instead.
    project: str | None = DEFAULT_PROJECT
    # PEM bundle of the CA(s) an https endpoint's certificate is verified against (a private CA); None:
    # the system's trust store (and SSL_CERT_FILE). Verification is never turned off.
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """``OPENIMS_ENDPOINT``, ``OPENIMS_USERNAME``, ``OPENIMS_PASSWORD``, ``OPENIMS_DOMAIN``,
        ``OPENIMS_PROJECT`` (empty: domain scope), ``OPENIMS_CACERT`` (else OpenStack's ``OS_CACERT``). Without
        a password, the admin password that ``openims serve`` wrote (``OPENIMS_CREDENTIALS_FILE``, default
        ``./data/admin-credentials``)."""
        env = os.environ if env is None else env
        username = env.get("OPENIMS_USERNAME") or DEFAULT_USERNAME
        password = env.get("OPENIMS_PASSWORD") or None
        if password is None:
            if env.get("OPENIMS_CREDENTIALS_FILE"):
                path = Path(env["OPENIMS_CREDENTIALS_FILE"]).expanduser()
            elif env.get("OPENIMS_DATA_DIR"):
                path = Path(env["OPENIMS_DATA_DIR"]).expanduser() / "admin-credentials"
            else:
                path = DEFAULT_CREDENTIALS_FILE
            password = _read_credentials_password(path, username)
        project = env.get("OPENIMS_PROJECT", DEFAULT_PROJECT)
        return cls(
            endpoint=(env.get("OPENIMS_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            username=username,
            password=password,
            domain=env.get("OPENIMS_DOMAIN") or DEFAULT_DOMAIN,
            project=project or None,
            ca_file=env.get("OPENIMS_CACERT") or env.get("OS_CACERT") or None,
        )

    def cache_key(self) -> CacheKey:
        return CacheKey(self.endpoint.rstrip("/"), self.domain, self.username, self.project)

    def auth_body(self) -> dict[str, Any]:
        user = {"name": self.username, "password": self.password, "domain": {"name": self.domain}}
        scope: dict[str, Any]
        if self.project is None:
            scope = {"domain": {"name": self.domain}}
        elif _HEX32.fullmatch(self.project):
            scope = {"project": {"id": self.project}}
        else:
            scope = {"project": {"name": self.project, "domain": {"name": self.domain}}}
        return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}


def _parse_time(value: Any) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        # Unknown format: treat the token as short-lived rather than fail the login.
        return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Session:
    """``with Session(Credentials.from_env()) as s: s.request("GET", "/v2/cloudimages")``."""

    def __init__(self, credentials: Credentials, *, token_cache: TokenCache | None = None,
                 timeout: float = 60.0, http_client: httpx.Client | None = None) -> None:
        """``token_cache`` None means the default file cache (``TokenCache.in_memory()`` keeps tokens
        in this process only). ``http_client`` replaces the keep-alive client, e.g. in tests."""
        self.credentials = credentials
        self.endpoint = credentials.endpoint.rstrip("/")
        self._cache = token_cache if token_cache is not None else TokenCache.default()
        self._key = credentials.cache_key()
        self._owns_http = http_client is None
        self.http = http_client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=ssl.create_default_context(cafile=credentials.ca_file) if credentials.ca_file else True,
            headers={"User-Agent": f"openims-client/{__version__}"},
        )
        self._lock = threading.Lock()
        self._entry: CachedToken | None = None

    # -------------------------------------------------------- token

    def _login(self) -> CachedToken:
        if not self.credentials.password:
            raise ApiError(0, "NoPassword", "No password: set OPENIMS_PASSWORD (or OPENIMS_CREDENTIALS_FILE "
                           "pointing at the admin-credentials file openims serve wrote).")
        response = self._send("POST", "/v3/auth/tokens", params={"nocatalog": "true"},
                              json=self.credentials.auth_body(), headers={})
        if response.status_code != 201:
            raise ApiError.from_response(response)
        token = response.headers.get("x-subject-token")
        if not token:
            raise ApiError(response.status_code, "NoToken",
                           "The token response has no X-Subject-Token header.")
        body = response.json().get("token", {})
        return CachedToken(
            token=token,
            expires_at=_parse_time(body.get("expires_at")),
            project_id=(body.get("project") or {}).get("id"),
            user_id=(body.get("user") or {}).get("id"),
            domain_id=((body.get("user") or {}).get("domain") or {}).get("id"),
        )

    def _current(self) -> tuple[CachedToken, bool]:
        """The token to use, and whether it was obtained just now (True) or reused (False)."""
        with self._lock:
            if self._entry is not None and self._cache.usable(self._entry):
                return self._entry, False
            cached = self._cache.get(self._key)
            if cached is not None:
                self._entry = cached
                return cached, False
            entry = self._login()
            self._cache.put(self._key, entry)
            self._entry = entry
            return entry, True

    def invalidate(self) -> None:
        """Forget the token (here and in the cache); the next request logs in again."""
        with self._lock:
            self._entry = None
            self._cache.drop(self._key)

    @property
    def token(self) -> str:
        return self._current()[0].token

    @property
    def project_id(self) -> str | None:
        return self._current()[0].project_id

    @property
    def user_id(self) -> str | None:
        return self._current()[0].user_id

    @property
    def domain_id(self) -> str | None:
        return self._current()[0].domain_id

    # -------------------------------------------------------- requests

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.endpoint}/{path.lstrip('/')}"

    def _send(self, method: str, path: str, *, json: Any = None, params: Any = None, content: Any = None,
              headers: Mapping[str, str]) -> httpx.Response:
        try:
            return self.http.request(method, self.url(path), json=json, params=params, content=content,
                                     headers=dict(headers))
        except httpx.TimeoutException as exc:
            raise ApiError(0, "Timeout", f"{method} {self.url(path)} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise ApiError(0, "ConnectionError", f"Cannot reach {self.endpoint}: {exc}") from exc

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None, content: Any = None,
                headers: Mapping[str, str] | None = None,
                expect: tuple[int, ...] = DEFAULT_EXPECT) -> httpx.Response:
        """Send an authenticated request; raise ``ApiError`` unless the status is in ``expect``."""
        start = content.tell() if _rewindable(content) else None
        replayable = content is None or start is not None or isinstance(content, bytes | str)
        entry, fresh = self._current()
        response = self._send(method, path, json=json, params=params, content=content,
                              headers={**(headers or {}), "X-Auth-Token": entry.token})
        if response.status_code == 401 and not fresh and replayable:
            # A reused token may have been revoked (password change, logout): log in once more.
            self.invalidate()
            if start is not None:
                content.seek(start)
            entry, _ = self._current()
            response = self._send(method, path, json=json, params=params, content=content,
                                  headers={**(headers or {}), "X-Auth-Token": entry.token})
        if response.status_code not in expect:
            raise ApiError.from_response(response)
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    @contextmanager
    def stream(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
               read_timeout: float = 60.0) -> Iterator[httpx.Response]:
        """An authenticated response whose body is read as it arrives (an event stream).

        ``ApiError`` for an error answer, and for a connection lost or silent past ``read_timeout``
        (status 0), whether before the answer or while it is read.
        """
        entry, _ = self._current()
        timeout = httpx.Timeout(read_timeout, connect=10.0)
        try:
            with self.http.stream(method, self.url(path), timeout=timeout,
                                  headers={**(headers or {}), "X-Auth-Token": entry.token}) as response:
                if response.status_code not in DEFAULT_EXPECT:
                    response.read()
                    raise ApiError.from_response(response)
                yield response
        except httpx.TimeoutException as exc:
            raise ApiError(0, "Timeout", f"{method} {self.url(path)} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise ApiError(0, "ConnectionError", f"Lost {self.endpoint}: {exc}") from exc

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _rewindable(content: Any) -> bool:
    try:
        return bool(content is not None and hasattr(content, "seek") and content.seekable())
    except (OSError, ValueError):
        return False
