"""web-download's URI filter: Glance's rules, and no way into the server's own network."""

from __future__ import annotations

import pytest

from openims.objects.web_download import RefusedUri, UriFilter, check


def public(host: str, port: int) -> list[str]:
    return {"images.example.com": ["93.184.216.34"], "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
            "meta.example.com": ["169.254.169.254"], "v6.example.com": ["::ffff:127.0.0.1"]}.get(host, [])


RULES = UriFilter(resolve=public)


@pytest.mark.parametrize("url", ["http://images.example.com/disk.qcow2", "https://images.example.com:443/x",
                                 "http://93.184.216.34/x", "http://images.example.com./x"])
def test_public_hosts_pass(url: str) -> None:
    target = check(url, RULES)
    assert target.address == "93.184.216.34"


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://images.example.com/x", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("http://images.example.com:8080/x", "port 8080"),
    ("http://127.0.0.1/x", "non-public"),
    ("http://localhost/x", "non-public"),
    ("http://[::1]/x", "non-public"),
    ("http://[::ffff:127.0.0.1]/x", "non-public"),
    ("http://v6.example.com/x", "non-public"),
    ("http://169.254.169.254/latest/meta-data/", "non-public"),
    ("http://meta.example.com/", "non-public"),
    ("http://10.1.2.3/x", "non-public"),
    ("http://192.168.0.1/x", "non-public"),
    ("http://0.0.0.0/x", "non-public"),
    ("http://sneaky.example.com/x", "non-public"),  # one address inside is enough
    ("http://2130706433/", "non-standard"),
    ("http://0x7f000001/", "non-standard"),
    ("http://0x7f.0.0.1/", "non-standard"),
    ("http://017700000001/", "non-standard"),
    ("http://0177.0.0.1/", "non-standard"),
    ("http://127.1/", "non-standard"),
    ("http://user:pw@images.example.com/x", "credentials"),
    ("http://nowhere.example.com/x", "does not resolve"),
    ("http:///x", "no host"),
    ("http://[zz::1]/x", "IPv6"),
])
def test_refused(url: str, why: str) -> None:
    with pytest.raises(RefusedUri, match=why):
        check(url, RULES if "localhost" not in url else UriFilter())


def test_operator_lists() -> None:
    # An allowed host may be internal (the operator said so); the allow list is then the only hosts.
    rules = UriFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(8000,), resolve=public)
    assert check("http://127.0.0.1:8000/x", rules).address == "127.0.0.1"
    with pytest.raises(RefusedUri, match="not allowed"):
        check("http://images.example.com:8000/x", rules)
    denied = UriFilter(disallowed_hosts=("images.example.com",), allowed_ports=(), disallowed_ports=(25,),
                       resolve=public)
    with pytest.raises(RefusedUri, match="not allowed"):
        check("http://images.example.com/x", denied)
    with pytest.raises(RefusedUri, match="port 25"):
        check("http://93.184.216.34:25/x", denied)
    assert check("http://93.184.216.34:8080/x", denied).port == 8080
    # No explicit port: the port lists do not apply (as Glance).
    assert check("http://93.184.216.34/x", UriFilter(allowed_ports=(8000,), resolve=public)).port == 80
