"""Typed settings, read from ``OPENIMS_*`` environment variables and CLI flags.

One ``Settings`` object is built at start-up and injected everywhere; nothing reads the
environment at import time.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openims.units import GiB, MiB

_S3_URL = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?"
# A store id: a short name safe in paths, locations and headers (Glance's are names like "fast", "ceph1").
_STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Glance's own stores (os_glance_staging_store, os_glance_tasks_store) use this prefix; no store of ours may.
RESERVED_STORE_PREFIX = "os_glance_"


@dataclass(frozen=True)
class StoreSpec:
    """One named image store of ``OPENIMS_STORES``."""

    id: str
    kind: Literal["file", "s3"]
    # file: the store's directory; s3: its "s3://<bucket>/<prefix>".
    target: str


def parse_stores(text: str, default: str, data_dir: Path, image_dir: Path) -> tuple[list[StoreSpec], str]:
    """``OPENIMS_STORES`` (``id:file``, ``id:file:/dir``, ``id:s3://bucket/prefix``, comma-separated) and
    ``OPENIMS_DEFAULT_STORE`` → the stores in order and the default's id; ValueError says what is wrong.

    ``id:file`` keeps its data in ``<data>/images/<id>/``; ``<data>/images`` itself holds the data of
    before several stores, which belongs to the default store.
    """
    specs: list[StoreSpec] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        store_id, sep, rest = entry.partition(":")
        if not sep or not rest:
            raise ValueError(f"OPENIMS_STORES: {entry!r} is not <id>:file, <id>:file:/dir or <id>:s3://bucket/prefix")
        if store_id.startswith(RESERVED_STORE_PREFIX):
            raise ValueError(f"OPENIMS_STORES: the store id {store_id!r} is reserved (the {RESERVED_STORE_PREFIX} "
                             "prefix is Glance's own)")
        if not _STORE_ID.fullmatch(store_id):
            raise ValueError(f"OPENIMS_STORES: the store id {store_id!r} is not 1-64 letters, digits, _ or - "
                             "(starting with a letter or digit)")
        if any(s.id == store_id for s in specs):
            raise ValueError(f"OPENIMS_STORES: the store id {store_id!r} is given twice")
        if rest == "file" or rest.startswith("file:"):
            raw = rest.removeprefix("file").removeprefix(":")
            if raw and not raw.startswith("/"):
                raise ValueError(f"OPENIMS_STORES: the directory of store {store_id!r} must be absolute ({raw!r})")
            path = Path(raw).resolve() if raw else image_dir / store_id
            if path in (image_dir, data_dir):
                raise ValueError(f"OPENIMS_STORES: store {store_id!r} cannot use {path} itself; give it a "
                                 "directory of its own")
            specs.append(StoreSpec(store_id, "file", str(path)))
        elif re.fullmatch(_S3_URL, rest):
            specs.append(StoreSpec(store_id, "s3", rest))
        else:
            raise ValueError(f"OPENIMS_STORES: store {store_id!r} is {rest!r}; use file, file:/dir or "
                             "s3://bucket/prefix")
    for i, a in enumerate(specs):
        for b in specs[i + 1:]:
            if a.kind == b.kind == "file" and a.target == b.target:
                raise ValueError(f"OPENIMS_STORES: stores {a.id!r} and {b.id!r} share the directory {a.target}")
            if a.kind == b.kind == "s3" and _overlap(a.target, b.target):
                raise ValueError(f"OPENIMS_STORES: stores {a.id!r} and {b.id!r} overlap ({a.target}, {b.target}); "
                                 "give each a bucket or prefix of its own")
    if not specs:
        if default:
            raise ValueError("OPENIMS_DEFAULT_STORE is set but OPENIMS_STORES names no store")
        return [], ""
    if default and all(s.id != default for s in specs):
        raise ValueError(f"OPENIMS_DEFAULT_STORE: {default!r} is not one of OPENIMS_STORES "
                         f"({', '.join(s.id for s in specs)})")
    return specs, default or specs[0].id


def _overlap(a: str, b: str) -> bool:
    """Whether two S3 stores' key spaces overlap (same bucket, one prefix starting the other)."""
    bucket_a, _, prefix_a = a.removeprefix("s3://").partition("/")
    bucket_b, _, prefix_b = b.removeprefix("s3://").partition("/")
    pa, pb = prefix_a.strip("/") + "/", prefix_b.strip("/") + "/"
    return bucket_a == bucket_b and (pa.startswith(pb) or pb.startswith(pa) or pa == "/" or pb == "/")


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated CIDRs (``10.0.0.0/8, ::1``) → networks; ValueError names the entry that is not one."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network (CIDR such as 10.0.0.0/8) or an address") from None
    return networks


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most ``count`` in each fixed window of ``seconds``."""

    count: int
    seconds: int


_RATE = re.compile(r"^(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
               "d": 86400, "day": 86400}
RATE_OFF = ("off", "0", "none", "false", "no")


def parse_rate(text: str) -> Rate | None:
    """``"100/min"``, ``"20/10s"``, ``"1000/h"`` → a Rate; ``"off"`` (or ``0``) → None (no limit)."""
    value = text.strip().lower()
    if value in RATE_OFF:
        return None
    m = _RATE.fullmatch(value)
    if m is None or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < 1):
        raise ValueError(f"{text!r} is not a rate: <count>/<period> such as 100/min, 20/10s or 1000/h, or off")
    seconds = int(m.group(2) or 1) * _RATE_UNITS[m.group(3)]
    if seconds > 86400:
        raise ValueError(f"{text!r}: a rate's window is at most a day")
    return Rate(int(m.group(1)), seconds)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENIMS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./data")
    # Empty means "SQLite in the data dir" (see ``database_url_resolved``).
    database_url: str = ""
    region: str = Field(default="local-1", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    token_ttl: int = Field(default=24 * 3600, gt=0, description="token lifetime in seconds")
    # How soon a process picks up token keys rotated on disk (by any host sharing the directory).
    key_refresh_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Where the token and credential keys live: directories under the data dir ("file", shared by a
    # common mount when scaled out) or the database ("database"), sealed under the master key that
    # every process is given, inline or as a file (Fernet keys, comma-separated; the first seals).
    key_store: Literal["file", "database"] = "file"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    admin_password: str | None = None
    # Public base URL put into the token catalog; derived from host/port (and TLS) when empty.
    public_url: str = ""
    # TLS on the service's own port: a PEM certificate chain (leaf first) and its unencrypted PEM key,
    # both or neither. TLS 1.2 is the minimum (openims.tls).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Worker threads run inside ``openims serve`` unless disabled.
    workers: int = Field(default=1, ge=0, le=64)
    # Threads that run request handlers. Few on purpose: handlers are short and hold the GIL, so more
    # threads only queue for it and stretch tail latency.
    api_threads: int = Field(default=2, ge=1, le=256)
    # How long anything waits for the database (the SQLite write lane, another process's lock, a
    # pooled PostgreSQL connection) before a request is answered 503 + Retry-After. Transactions are
    # short, so a wait this long means the database is stuck or down, not merely busy.
    db_busy_timeout: float = Field(default=10.0, gt=0, le=300)
    # PostgreSQL connections kept per process (up to twice as many more under load).
    db_pool_size: int = Field(default=10, ge=1, le=500)
    job_lease_seconds: int = Field(default=60, ge=5)
    # On SIGTERM/SIGINT a worker claims nothing more and lets its running jobs finish for this long;
    # the rest are handed back (qemu-img killed, scratch removed, lease released) for another worker.
    worker_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How long a direct upload holds its image in "saving" without receiving data before the
    # worker's sweep gives the image back (queued): the recovery time after a crash mid-upload.
    upload_lease_seconds: int = Field(default=60, ge=2)
    store_format: Literal["qcow2", "raw"] = "qcow2"
    # Glance's interoperable import (glance-direct) converts to this format; empty keeps the data as
    # it is, as Glance does without its image_conversion plugin.
    import_convert_to: Literal["", "qcow2", "raw"] = ""
    # web-download's URI filter, comma-separated lists as Glance's [import_filtering_opts]. Besides
    # these, hosts that are or resolve to non-public addresses are refused unless listed in
    # web_download_allowed_hosts (objects.web_download).
    web_download_schemes: str = "http,https"
    web_download_allowed_ports: str = "80,443"
    web_download_disallowed_ports: str = ""
    web_download_allowed_hosts: str = ""
    web_download_disallowed_hosts: str = ""
    web_download_timeout: float = Field(default=3600.0, gt=0)
    max_image_file_size: int = 128 * GiB
    max_quick_import_size: int = 1024 * GiB
    convert_timeout: float = Field(default=6 * 3600, gt=0)
    max_request_body: int = Field(default=1024 * 1024, gt=0, description="limit for JSON bodies")
    image_quota: int = Field(default=100, ge=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)
    # Rate limits (iam.ratelimit; docs/operations.md "Rate limits"), counted in the database so that
    # every API process shares them: "<count>/<period>" (100/min, 20/10s, 1000/h) or "off". Password
    # logins per user (every attempt) and per source address; signature failures per access key and
    # per source address; tokens issued per user (password and token methods).
    rate_login_per_user: str = "100/min"
    rate_login_per_source: str = "1000/min"
    rate_signature_failures_per_key: str = "100/min"
    rate_signature_failures_per_source: str = "1000/min"
    rate_tokens_per_user: str = "1000/min"
    # Balancers whose X-Forwarded-For is believed (comma-separated CIDRs): the source address of the
    # per-source limits is then the client the nearest such balancer saw, not the balancer itself.
    trusted_proxies: str = ""
    # Cost of argon2id; tests lower it to keep the suite fast.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # Where users' buckets live: directories under <data>/obs ("file") or an S3 engine ("s3").
    buckets: Literal["file", "s3"] = "file"
    # Where stored images live: <data>/images ("file") or "s3://<bucket>/<prefix>" on the engine.
    image_store: str = Field(default="file", pattern=rf"^(file|{_S3_URL})$")
    # Several named image stores instead (Glance's enabled_backends): "id:file", "id:file:/dir" or
    # "id:s3://bucket/prefix", comma-separated (see parse_stores). Empty: the one store of image_store,
    # with no store ids anywhere (Glance without multi-backend).
    stores: str = ""
    # Where new data goes and downloads read first; the first of ``stores`` when empty.
    default_store: str = ""
    # The S3 engine (SeaweedFS, MinIO, Ceph RGW, OBS, AWS S3). Without keys, boto3's own credential
    # chain applies (environment, shared files, instance metadata).
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_addressing: Literal["path", "virtual"] = "path"
    # A CA bundle to verify the engine's TLS certificate with; verification is on unless disabled.
    s3_ca_bundle: Path | None = None
    s3_verify_tls: bool = True
    # Attempts per S3 request (throttling, 5xx and connection resets are retried with backoff and jitter).
    s3_max_attempts: int = Field(default=5, ge=1, le=20)
    # Multipart uploads and ranged downloads: part size and how many parts move at once. Memory per
    # transfer is about (parallel + 1) x part size.
    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=5 * GiB)
    s3_parallel_parts: int = Field(default=2, ge=1, le=64)
    # Local space for image files downloaded from S3 for qemu-img (which needs random access) and
    # for converted images on their way to an S3 image store. Jobs wait while it is full.
    scratch_dir: Path | None = None
    scratch_limit: int = Field(default=256 * GiB, gt=0)
    # Stored objects no image row points at are removed after this long (crash leftovers).
    orphan_grace_seconds: int = Field(default=3600, ge=0)

    # Logs: "text" (the classic one-line format) or "json" (one object per line, with request and job fields).
    log_format: Literal["text", "json"] = "text"
    # One access line per request (openims.access). Off for a deployment whose balancer or proxy already
    # logs each request: the line is a noticeable share of a cheap request's cost (docs/operations.md).
    access_log: bool = True
    # The audit trail (openims.audit, docs/operations.md "Audit trail"): traces older than this many days
    # are pruned by the workers' sweep; each trace is also written as one JSON line to this file ("-":
    # standard output; empty: no file) for a SIEM.
    audit_retention_days: int = Field(default=7, ge=1)
    # Failed authentications traced per source address and process (openims.audit.throttle): past it, a
    # flood of bad credentials is counted and logged instead of written row by row. "off": every one.
    audit_failed_auth_per_source: str = "60/min"
    audit_log: str = ""
    # Who may read /metrics: source networks as comma-separated CIDRs (a bare address is one host);
    # empty lets anyone. The address is the TCP peer's: behind a balancer, list the balancer's.
    metrics_allow: str = ""

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("rate_login_per_user", "rate_login_per_source", "rate_signature_failures_per_key",
                     "rate_signature_failures_per_source", "rate_tokens_per_user", "audit_failed_auth_per_source")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse_rate(v)  # refused at start, naming the setting
        return v

    @field_validator("metrics_allow", "trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        parse_networks(v)  # refused at start, naming the entry
        return v

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return parse_networks(self.trusted_proxies)

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return parse_networks(self.metrics_allow)

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = (("OPENIMS_TLS_CERT_FILE", "OPENIMS_TLS_KEY_FILE") if self.tls_cert_file is not None
                              else ("OPENIMS_TLS_KEY_FILE", "OPENIMS_TLS_CERT_FILE"))
            raise ValueError(f"{given} is set but {missing} is not: TLS needs both the certificate and its key "
                             "(or neither, for plain HTTP)")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @model_validator(mode="after")
    def _stores_valid(self) -> Self:
        # At start, with one line naming the setting, not at the first import.
        if self.stores.strip() and self.image_store != "file":
            raise ValueError("OPENIMS_STORES and OPENIMS_IMAGE_STORE=s3://… cannot be combined: name the S3 "
                             "store in OPENIMS_STORES (id:s3://bucket/prefix)")
        self.store_specs()
        return self

    def store_specs(self) -> tuple[list[StoreSpec], str]:
        """The named stores and the default's id; ([], "") with a single store."""
        return parse_stores(self.stores, self.default_store.strip(), self.data_dir, self.image_dir)

    @property
    def database_url_resolved(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'openims.db'}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def obs_dir(self) -> Path:
        return self.data_dir / "obs"

    @property
    def image_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def scratch_path(self) -> Path:
        return (self.scratch_dir or self.data_dir / "scratch").expanduser().resolve()

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "fernet-keys"

    @property
    def credential_key_dir(self) -> Path:
        return self.data_dir / "credential-keys"

    def master_key_text(self) -> str | None:
        """The master key as given (inline wins over the file), or None when neither is set."""
        if self.master_key is not None:
            return self.master_key.get_secret_value()
        if self.master_key_file is not None:
            return self.master_key_file.expanduser().read_text()
        return None
