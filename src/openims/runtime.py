"""The wiring: one Runtime per process holds settings, database, keys and services.

Built once at start-up and handed to the app and the worker; nothing here is a global.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from openims.catalog.metadefs import seed as metadefs_seed
from openims.clock import Clock, utcnow
from openims.config import Settings
from openims.db import migrate
from openims.db.session import Database
from openims.iam.access_keys import SecretCipher
from openims.iam.keys import DatabaseKeys, KeyRepository, KeyRing, KeyStore, KeyStoreError, master_keys
from openims.iam.passwords import PasswordHashing
from openims.iam.service import Authenticator, BootstrapResult, bootstrap, write_admin_credentials
from openims.iam.tokens import RevocationList, TokenCodec
from openims.objects.base import BucketStore
from openims.objects.filesystem import FilesystemBuckets
from openims.objects.image_store import FileImageStore, ImageStore
from openims.objects.scratch import Scratch

log = logging.getLogger("openims")


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    keys: KeyStore
    hashing: PasswordHashing
    codec: TokenCodec
    revocations: RevocationList
    authenticator: Authenticator
    buckets: BucketStore
    images: ImageStore
    # Local space for S3 objects qemu-img reads and images on their way to S3 (bounded, shared per host).
    scratch: Scratch
    # Access-key secrets, encrypted under their own keys (<data>/credential-keys, or the database),
    # apart from the token keys as Keystone keeps them.
    credential_keys: KeyStore
    credential_cipher: SecretCipher
    # Set when this process submits a job, so its in-process workers start at once instead of at
    # their next poll; workers in other processes find the job by polling.
    job_submitted: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.db.dispose()


def build_runtime(settings: Settings, clock: Clock = utcnow, *, upgrade: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if upgrade:
        migrate.upgrade(settings.database_url_resolved)
    db = Database(settings.database_url_resolved, busy_timeout=settings.db_busy_timeout,
                  pool_size=settings.db_pool_size)
    keys, credential_keys = key_stores(settings, db, clock)
    keys.ensure()
    credential_keys.ensure()
    hashing = PasswordHashing(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    codec = TokenCodec(KeyRing(keys, refresh=settings.key_refresh_seconds), clock)
    buckets, images = build_stores(settings)
    return Runtime(
        settings=settings,
        clock=clock,
        db=db,
        keys=keys,
        hashing=hashing,
        codec=codec,
        revocations=RevocationList(db, clock),
        authenticator=Authenticator(settings, hashing, codec, clock),
        buckets=buckets,
        images=images,
        scratch=Scratch(settings.scratch_path, settings.scratch_limit),
        credential_keys=credential_keys,
        credential_cipher=SecretCipher(KeyRing(credential_keys, refresh=settings.key_refresh_seconds)),
    )


def key_stores(settings: Settings, db: Database, clock: Clock = utcnow) -> tuple[KeyStore, KeyStore]:
    """The token keys and the credential keys, in the configured store."""
    if settings.key_store == "file":
        return KeyRepository(settings.key_dir), KeyRepository(settings.credential_key_dir)
    try:
        text = settings.master_key_text()
    except OSError as exc:
        raise KeyStoreError(f"OPENIMS_MASTER_KEY_FILE cannot be read: {exc.strerror} "
                            f"({settings.master_key_file})") from None
    if text is None:
        raise KeyStoreError("OPENIMS_KEY_STORE=database needs the master key: set OPENIMS_MASTER_KEY or "
                            "OPENIMS_MASTER_KEY_FILE (the same on every process)")
    master = master_keys(text)
    return DatabaseKeys(db, "token", master, clock), DatabaseKeys(db, "credential", master, clock)


def build_stores(settings: Settings) -> tuple[BucketStore, ImageStore]:
    """Users' buckets and the image store, each on files or on the S3 engine, as configured."""
    files = FileImageStore(settings.image_dir)
    if settings.buckets == "file" and settings.image_store == "file":
        return FilesystemBuckets(settings.obs_dir), files
    # boto3 is imported only when S3 is configured: the embedded default does not pay for it.
    from openims.objects.s3 import S3Objects, make_client
    from openims.objects.s3_stores import S3Buckets, S3ImageStore

    objects = S3Objects(make_client(settings), settings)
    buckets: BucketStore = (S3Buckets(objects, settings.s3_region) if settings.buckets == "s3"
                            else FilesystemBuckets(settings.obs_dir))
    images: ImageStore = files
    if settings.image_store != "file":
        store = S3ImageStore(objects, settings.image_store, settings.scratch_path / "store", files,
                             settings.s3_region)
        store.ensure_bucket()
        images = store
    return buckets, images


def bootstrap_runtime(rt: Runtime) -> BootstrapResult:
    """First-start bootstrap and the shipped metadefs; writes the generated admin password to the data dir once."""
    with rt.db.transaction() as s:
        result = bootstrap(s, rt.settings, rt.hashing, rt.clock)
        # The shipped metadata definitions, owned by the service's project (loaded once each).
        metadefs_seed.seed(s, result.project_id, rt.clock())
    if result.password is not None:
        write_admin_credentials(rt.settings.data_dir / "admin-credentials", rt.settings, result.password)
    return result
