"""TLS on the service's own port (issue 16, item 9): the server's SSL context.

One place decides what the listening socket accepts: TLS 1.2 and 1.3 only (1.0 and 1.1 are refused
at the handshake, whatever the host's OpenSSL configuration allows), the certificate chain and key
given by ``OPENIMS_TLS_CERT_FILE`` / ``OPENIMS_TLS_KEY_FILE``. No client certificates are asked for:
callers authenticate with tokens or AK/SK signatures.
"""

from __future__ import annotations

import ssl
from pathlib import Path

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
