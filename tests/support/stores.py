"""The two storage set-ups end-to-end suites run against: directories (the embedded default) and a real
S3 engine (SeaweedFS, one per server, with signed credentials), for users' buckets and the image store."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from openims.objects.seaweed import Identity, SeaweedFS

IMAGE_BUCKET = "openims-images"
IMAGE_PREFIX = "stored/"
# A user's own engine credentials (what an operator hands out for aws-cli / boto3 / obsutil): may
# read and write the user's buckets, nothing of the service's.
USER_BUCKETS = ("e2e-bucket", "direct-bucket")


class Stores:
    """Where a server keeps users' buckets and stored images; how a test looks at them directly."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def env(self) -> dict[str, str]:
        return {}

    def stored_image(self, data_dir: Path, image_id: str, into: Path) -> Path:
        """A local copy of the stored data of ``image_id`` (the file itself for the file store)."""
        return data_dir / "images" / image_id

    def stored_images(self, data_dir: Path) -> list[str]:
        """Names of everything in the image store (leftovers included)."""
        d = data_dir / "images"
        return sorted(p.name for p in d.iterdir() if p.name != ".tmp") if d.exists() else []

    def bucket_object(self, data_dir: Path, bucket: str, key: str, into: Path) -> Path | None:
        """A local copy of a user's object (None if absent)."""
        path = data_dir / "obs" / bucket / key
        return path if path.is_file() else None

    def close(self) -> None:
        pass


class S3Stores(Stores):
    kind = "s3"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        admin = Identity("openims", "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24),
                         ("Admin", "Read", "Write", "List", "Tagging"))
        actions = tuple(f"{a}:{b}" for b in USER_BUCKETS for a in ("Read", "Write", "List"))
        self.user = Identity("user", "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24), actions)
        self.engine = SeaweedFS(root / "seaweed", identities=(admin, self.user)).start()

    def env(self) -> dict[str, str]:
        admin = self.engine.admin
        return {"OPENIMS_BUCKETS": "s3", "OPENIMS_IMAGE_STORE": f"s3://{IMAGE_BUCKET}/{IMAGE_PREFIX}",
                "OPENIMS_S3_ENDPOINT": self.engine.endpoint, "OPENIMS_S3_ACCESS_KEY_ID": admin.access_key,
                "OPENIMS_S3_SECRET_ACCESS_KEY": admin.secret_key,
                # Small parts, so even test images go up in several parallel parts.
                "OPENIMS_S3_PART_SIZE": str(5 << 20), "OPENIMS_S3_MAX_ATTEMPTS": "2"}

    def client(self, identity: Identity | None = None) -> Any:
        who = identity or self.engine.admin
        return boto3.client("s3", endpoint_url=self.engine.endpoint, region_name="us-east-1",
                            aws_access_key_id=who.access_key, aws_secret_access_key=who.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def _keys(self, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=IMAGE_BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stored_image(self, data_dir: Path, image_id: str, into: Path) -> Path:
        keys = self._keys(f"{IMAGE_PREFIX}{image_id}/")
        assert len(keys) == 1, f"image {image_id}: {keys}"
        into.mkdir(parents=True, exist_ok=True)
        dest = into / f"stored-{image_id}"
        self.client().download_file(IMAGE_BUCKET, keys[0], str(dest))
        return dest

    def stored_images(self, data_dir: Path) -> list[str]:
        return [k.removeprefix(IMAGE_PREFIX).split("/")[0] for k in self._keys(IMAGE_PREFIX)]

    def bucket_object(self, data_dir: Path, bucket: str, key: str, into: Path) -> Path | None:
        into.mkdir(parents=True, exist_ok=True)
        dest = into / key.replace("/", "_")
        try:
            self.client().download_file(bucket, key, str(dest))
        except Exception:
            return None
        return dest

    def close(self) -> None:
        self.engine.stop()
        shutil.rmtree(self.root / "seaweed", ignore_errors=True)


def make_stores(kind: str, root: Path) -> Stores:
    return S3Stores(root) if kind == "s3" else Stores(root)
