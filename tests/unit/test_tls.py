"""openims.tls: the server context accepts TLS 1.2 and newer only; unusable files are refused with their name."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from openims.config import Settings
from openims.tls import TlsSetupError, server_context
from tests.support.pki import make_pki


def test_context_refuses_below_tls_1_2(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    ctx = server_context(pki.cert, pki.key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_missing_file_is_named(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(TlsSetupError, match="OPENIMS_TLS_KEY_FILE"):
        server_context(pki.cert, tmp_path / "nope.key")


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    pki, other = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    with pytest.raises(TlsSetupError, match="cannot be used"):
        server_context(pki.cert, other.key)


def test_base_url_is_https_with_tls_unless_public_url_says_otherwise(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    s = Settings(data_dir=tmp_path, port=8443, tls_cert_file=pki.cert, tls_key_file=pki.key)
    assert s.base_url == "https://127.0.0.1:8443"
    assert Settings(data_dir=tmp_path, port=8443, tls_cert_file=pki.cert, tls_key_file=pki.key,
                    public_url="http://lb.example/").base_url == "http://lb.example"
    assert Settings(data_dir=tmp_path, port=8080).base_url == "http://127.0.0.1:8080"


def test_one_of_the_pair_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OPENIMS_TLS_CERT_FILE is set but OPENIMS_TLS_KEY_FILE is not"):
        Settings(data_dir=tmp_path, tls_cert_file=tmp_path / "c.pem")
