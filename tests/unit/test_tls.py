"""openims.tls: the server context accepts TLS 1.2 and newer only; unusable files are refused with their name."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from openims.config import Settings
from openims.tls import ReloadingContext, TlsSetupError, server_context
from tests.support.pki import issue, make_pki, replace, served_serial


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


def _serve(context: ssl.SSLContext, connections: int) -> tuple[int, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        with listener:
            for _ in range(connections):
                conn, _ = listener.accept()
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_a_renewed_certificate_is_served_from_the_next_handshake(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pki = make_pki(tmp_path)
    first = x509.load_pem_x509_certificate(pki.cert.read_bytes()).serial_number
    reloading = ReloadingContext(pki.cert, pki.key)
    port, server = _serve(reloading.listening, 4)
    assert served_serial(port, pki.ca) == first
    cert, key = issue(pki)
    renewed = x509.load_pem_x509_certificate(cert).serial_number
    replace(pki.cert, cert)  # the certificate first: it does not match the old key yet
    assert served_serial(port, pki.ca) == first
    assert "cannot be used yet" in caplog.text
    replace(pki.key, key)
    assert served_serial(port, pki.ca) == renewed
    assert served_serial(port, pki.ca) == renewed
    server.join(10)
