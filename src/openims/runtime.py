"""The wiring: one Runtime per process holds settings, database, keys and services.

Built once at start-up and handed to the app and the worker; nothing here is a global.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openims.audit.trail import AuditTrail
from openims.catalog.metadefs import seed as metadefs_seed
from openims.clock import Clock, utcnow
from openims.config import Settings
from openims.db import migrate
from openims.db.session import Database
from openims.iam.access_keys import SecretCipher
from openims.iam.keys import DatabaseKeys, KeyRepository, KeyRing, KeyStore, KeyStoreError, master_keys
from openims.iam.passwords import PasswordHashing
from openims.iam.ratelimit import RateLimiter, rates_of
from openims.iam.service import Authenticator, BootstrapResult, bootstrap, write_admin_credentials
from openims.iam.tokens import RevocationList, TokenCodec
from openims.objects.base import BucketStore
from openims.objects.filesystem import FilesystemBuckets
from openims.objects.image_store import FileImageStore, ImageStore
from openims.objects.image_stores import ImageStores, StoreInfo
from openims.objects.scratch import Scratch

if TYPE_CHECKING:
    from openims.objects.s3 import S3Objects

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
    # Rate limits on logins, signatures and token issuance, counted in the database (all processes).
    limits: RateLimiter
    # The audit trail (openims.audit): traces of mutating calls, failed authentications and jobs.
    audit: AuditTrail
    # Set when this process submits a job, so its in-process workers start at once instead of at
    # their next poll; workers in other processes find the job by polling.
    job_submitted: threading.Event = field(default_factory=threading.Event)

    @property
    def stores(self) -> ImageStores | None:
        """The named image stores (``OPENIMS_STORES``); None with the single store of ``OPENIMS_IMAGE_STORE``."""
        return self.images if isinstance(self.images, ImageStores) else None

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
        limits=RateLimiter(db, clock, rates_of(settings)),
        audit=AuditTrail(db, clock, log_path=settings.audit_log, retention_days=settings.audit_retention_days),
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
    """Users' buckets and the image store(s), each on files or on the S3 engine, as configured."""
    files = FileImageStore(settings.image_dir)
    specs, _default = settings.store_specs()
    s3_images = settings.image_store != "file" or any(spec.kind == "s3" for spec in specs)
    if settings.buckets == "file" and not s3_images:
        buckets: BucketStore = FilesystemBuckets(settings.obs_dir)
        return buckets, (_named_stores(settings, None, files) if specs else files)
    # boto3 is imported only when S3 is configured: the embedded default does not pay for it.
    from openims.objects.s3 import S3Objects, make_client
    from openims.objects.s3_stores import S3Buckets, S3ImageStore

    objects = S3Objects(make_client(settings), settings)
    buckets = (S3Buckets(objects, settings.s3_region) if settings.buckets == "s3"
               else FilesystemBuckets(settings.obs_dir))
    if specs:
        return buckets, _named_stores(settings, objects, files)
    images: ImageStore = files
    if settings.image_store != "file":
        store = S3ImageStore(objects, settings.image_store, settings.scratch_path / "store", files,
                             settings.s3_region)
        store.ensure_bucket()
        images = store
    return buckets, images


def _named_stores(settings: Settings, objects: S3Objects | None, legacy: FileImageStore) -> ImageStores:
    """``OPENIMS_STORES``: each file store in its own directory, each S3 store in its bucket and prefix;
    ``legacy`` (<data>/images) keeps serving data from before, as the default store's."""
    specs, default = settings.store_specs()
    stores: dict[str, ImageStore] = {}
    infos: list[StoreInfo] = []
    for spec in specs:
        if spec.kind == "file":
            stores[spec.id] = FileImageStore(Path(spec.target), name=spec.id)
            # Glance's file driver's properties (chunk_size: what a read hands over at once).
            props: dict[str, object] = {"data_dir": spec.target, "chunk_size": 1 << 20, "thin_provisioning": False}
        else:
            from openims.objects.s3_stores import S3ImageStore, parse_store_url

            assert objects is not None  # built whenever an S3 store is configured
            s3 = S3ImageStore(objects, spec.target, settings.scratch_path / "store" / spec.id, legacy,
                              settings.s3_region)
            s3.ensure_bucket()
            stores[spec.id] = s3
            bucket, prefix = parse_store_url(spec.target)
            props = {"bucket": bucket, "prefix": prefix}
        infos.append(StoreInfo(spec.id, spec.kind, dict(props)))
    return ImageStores(stores, infos, default, legacy)


def bootstrap_runtime(rt: Runtime) -> BootstrapResult:
    """First-start bootstrap and the shipped metadefs; writes the generated admin password to the data dir once."""
    with rt.db.transaction() as s:
        result = bootstrap(s, rt.settings, rt.hashing, rt.clock)
        # The shipped metadata definitions, owned by the service's project (loaded once each).
        metadefs_seed.seed(s, result.project_id, rt.clock())
    if result.password is not None:
        write_admin_credentials(rt.settings.data_dir / "admin-credentials", rt.settings, result.password)
    return result
