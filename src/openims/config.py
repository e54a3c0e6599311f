"""Typed settings, read from ``OPENIMS_*`` environment variables and CLI flags.

One ``Settings`` object is built at start-up and injected everywhere; nothing reads the
environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openims.units import GiB, MiB


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
    # Public base URL put into the token catalog; derived from host/port when empty.
    public_url: str = ""
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
    # Cost of argon2id; tests lower it to keep the suite fast.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # Where users' buckets live: directories under <data>/obs ("file") or an S3 engine ("s3").
    buckets: Literal["file", "s3"] = "file"
    # Where stored images live: <data>/images ("file") or "s3://<bucket>/<prefix>" on the engine.
    image_store: str = Field(default="file", pattern=r"^(file|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?)$")
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

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

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
        return f"http://{host}:{self.port}"

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
