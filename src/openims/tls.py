"""TLS on the service's own port (issue 16, item 9): the server's SSL context.

One place decides what the listening socket accepts: TLS 1.2 and 1.3 only (1.0 and 1.1 are refused
at the handshake, whatever the host's OpenSSL configuration allows), the certificate chain and key
given by ``OPENIMS_TLS_CERT_FILE`` / ``OPENIMS_TLS_KEY_FILE``. No client certificates are asked for:
callers authenticate with tokens or AK/SK signatures.

A renewed certificate (certbot, cert-manager, an operator replacing the files) is served from the next
handshake on, without a restart (``ReloadingContext``); a pair that cannot be used yet — the certificate
replaced before its key — leaves the previous one in service until it can.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("openims.tls")

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TlsSetupError(ValueError):
    """The certificate or key cannot be used; the message names the file and the reason."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for the certificate chain (PEM, leaf first) and its private key (PEM, unencrypted)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    # Python's defaults otherwise (ECDHE suites with AEAD ciphers for 1.2; 1.3's own suites).
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    for what, path in (("OPENIMS_TLS_CERT_FILE", cert_file), ("OPENIMS_TLS_KEY_FILE", key_file)):
        if not path.is_file():
            raise TlsSetupError(f"{what}: {path} is not a readable file")
    try:
        # A password callback, so that an encrypted key fails here instead of prompting on the terminal.
        ctx.load_cert_chain(str(cert_file), str(key_file), password=lambda: b"")
    except ssl.SSLError as exc:
        raise TlsSetupError(f"OPENIMS_TLS_CERT_FILE / OPENIMS_TLS_KEY_FILE cannot be used ({cert_file}, "
                            f"{key_file}): {exc.reason or exc}") from None
    except OSError as exc:
        raise TlsSetupError(f"OPENIMS_TLS_CERT_FILE / OPENIMS_TLS_KEY_FILE cannot be read: {exc.strerror} "
                            f"({exc.filename or cert_file})") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ReloadingContext:
    """The listening context (``listening``), which serves the certificate files' current contents.

    At each ClientHello (OpenSSL calls the server-name callback whether or not the client sent a name)
    the two files are looked at (``stat``: cheap beside a handshake); when they changed, a new context is
    built from them and the connection is handed to it.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._files = (cert_file, key_file)
        self._lock = threading.Lock()
        self._seen = self._state()
        self.listening = server_context(cert_file, key_file)
        self._current = self.listening
        self.listening.sni_callback = self._on_hello

    def _state(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in map(os.stat, self._files))
        except OSError:
            return None

    def current(self) -> ssl.SSLContext:
        """The context of the files as they are now (the previous one while they cannot be used)."""
        state = self._state()
        if state != self._seen:
            with self._lock:
                if state != self._seen:
                    self._seen = state
                    try:
                        self._current = server_context(*self._files)
                        log.info("TLS: the certificate in %s was renewed; new connections get it", self._files[0])
                    except TlsSetupError as exc:
                        log.warning("TLS: the certificate files changed but cannot be used yet, the previous "
                                    "certificate stays in service: %s", exc)
        return self._current

    def _on_hello(self, connection: Any, _server_name: str | None, listening: ssl.SSLContext) -> None:
        current = self.current()
        if current is not listening:
            connection.context = current
