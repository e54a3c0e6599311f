"""Image data from a URL the user names (Glance's web-download), fetched so it cannot be turned against us.

Glance's filter (``[import_filtering_opts]``: schemes, ports, hosts) and, on top of it, what a
service inside a private network needs: a host that is, or resolves to, a loopback, link-local
(the cloud metadata address among them), private, or otherwise non-global address is refused
unless the operator allowed that host by name. The name is resolved once and the connection made
to the address that was checked (no second lookup a DNS rebinding could answer differently);
TLS still verifies the certificate against the name. Every redirect is checked again. Numeric
host spellings other than the standard dotted quad (``2130706433``, ``0x7f.1``, ``017700000001``,
``127.1``) are refused outright. The body is streamed to a file, bounded in size and time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from openims.config import Settings

# Redirects followed at most (each one checked like the first URL).
MAX_REDIRECTS = 5
_CHUNK = 1024 * 1024
# Only these look like numbers to a resolver: all digits, 0x-hex, or dotted runs of them.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)
_STANDARD_QUAD = re.compile(r"^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|"
                            r"1[0-9][0-9]|[1-9]?[0-9])){3}$")


class RefusedUri(ValueError):
    """The URI (or a redirect target) does not pass the filter; the message says why."""


class DownloadFailed(RuntimeError):
    """The server could not be reached, answered an error, or sent too much or too slowly."""


def _items(raw: str) -> tuple[str, ...]:
    return tuple(x.strip().lower() for x in raw.split(",") if x.strip())


@dataclass(frozen=True)
class UriFilter:
    """The operator's rules; a non-empty allow list makes its deny list irrelevant, as in Glance."""

    schemes: tuple[str, ...] = ("http", "https")
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    # How names are resolved (tests give their own); the standard resolver otherwise.
    resolve: Callable[[str, int], list[str]] = field(default=lambda host, port: _resolve(host, port))

    @classmethod
    def from_settings(cls, settings: Settings) -> UriFilter:
        try:
            return cls(schemes=_items(settings.web_download_schemes),
                       allowed_ports=tuple(int(p) for p in _items(settings.web_download_allowed_ports)),
                       disallowed_ports=tuple(int(p) for p in _items(settings.web_download_disallowed_ports)),
                       allowed_hosts=_items(settings.web_download_allowed_hosts),
                       disallowed_hosts=_items(settings.web_download_disallowed_hosts))
        except ValueError as exc:
            raise ValueError(f"OPENIMS_WEB_DOWNLOAD_*_PORTS must list port numbers: {exc}") from exc

    def refusal(self, url: str) -> str | None:
        """Why ``url`` is refused, or None."""
        try:
            check(url, self)
        except RefusedUri as exc:
            return str(exc)
        return None


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written (lower case, IPv6 without brackets)
    port: int
    address: str  # the checked address the connection goes to


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedUri(f"the host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check(url: str, rules: UriFilter) -> Target:
    """The URL's target, or RefusedUri saying which rule it breaks."""
    if len(url) > 2048:
        raise RefusedUri("the URI is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise RefusedUri(f"the URI is malformed ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in rules.schemes:
        raise RefusedUri(f"the scheme {scheme or '(none)'!r} is not allowed")
    # A trailing dot (the absolute form of a name) names the same host: compare and resolve without it.
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise RefusedUri("the URI names no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUri("credentials in the URI are not allowed")
    port = explicit_port or (443 if scheme == "https" else 80)
    if explicit_port is not None:
        if rules.allowed_ports and explicit_port not in rules.allowed_ports:
            raise RefusedUri(f"the port {explicit_port} is not allowed")
        if not rules.allowed_ports and explicit_port in rules.disallowed_ports:
            raise RefusedUri(f"the port {explicit_port} is not allowed")
    literal: str | None = None
    if ":" in host:
        try:
            literal = str(ipaddress.IPv6Address(host))
        except ValueError as exc:
            raise RefusedUri(f"the host {host!r} is not a valid IPv6 address") from exc
    elif _NUMERIC_HOST.fullmatch(host):
        if not _STANDARD_QUAD.fullmatch(host):
            raise RefusedUri(f"the host {host!r} is a numeric address in a non-standard form")
        literal = host
    if rules.allowed_hosts and host not in rules.allowed_hosts:
        raise RefusedUri(f"the host {host!r} is not allowed")
    if not rules.allowed_hosts and host in rules.disallowed_hosts:
        raise RefusedUri(f"the host {host!r} is not allowed")
    addresses = [literal] if literal else rules.resolve(host, port)
    if not addresses:
        raise RefusedUri(f"the host {host!r} does not resolve")
    # Internal addresses only for a host the operator named: a public name may not point inside.
    if host not in rules.allowed_hosts:
        inside = [a for a in addresses if not _is_public(a)]
        if inside:
            raise RefusedUri(f"the host {host!r} is (or resolves to) the non-public address {inside[0]}")
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


def download(url: str, dest: Path, rules: UriFilter, *, max_size: int, timeout: float,
             verify: bool | str = True, progress: Callable[[int], None] | None = None) -> int:
    """Fetch ``url`` into ``dest``, following checked redirects; the bytes written.

    RefusedUri for a URI or redirect the filter refuses, DownloadFailed for everything else.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=verify, follow_redirects=False, trust_env=False,
                      timeout=httpx.Timeout(min(60.0, timeout))) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            target = check(url, rules)
            host = f"[{target.address}]" if ":" in target.address else target.address
            parts = urlsplit(url)
            direct = parts._replace(netloc=f"{host}:{target.port}").geturl()
            name = f"[{target.host}]" if ":" in target.host else target.host
            headers = {"Host": name if parts.port is None else f"{name}:{target.port}",
                       "Accept": "*/*", "User-Agent": "openims-web-download"}
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            try:
                with client.stream("GET", direct, headers=headers, extensions=extensions) as r:
                    if r.is_redirect and "location" in r.headers:
                        url = urljoin(url, r.headers["location"])
                        continue
                    if r.status_code != 200:
                        raise DownloadFailed(f"the server answered {r.status_code} for {url}")
                    return _save(r, dest, max_size, deadline, progress)
            except httpx.HTTPError as exc:
                raise DownloadFailed(f"the download of {url} failed: {exc}") from exc
        raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects")


def _save(r: httpx.Response, dest: Path, max_size: int, deadline: float,
          progress: Callable[[int], None] | None) -> int:
    announced = r.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > max_size:
        raise DownloadFailed(f"the file is {announced} bytes, more than the {max_size} bytes allowed")
    total = 0
    with open(dest, "wb") as f:
        for chunk in r.iter_bytes(_CHUNK):
            total += len(chunk)
            if total > max_size:
                raise DownloadFailed(f"the file is larger than the {max_size} bytes allowed")
            if time.monotonic() > deadline:
                raise DownloadFailed("the download took longer than allowed")
            f.write(chunk)
            if progress is not None:
                progress(total)
    return total
