"""IMS operations for scripts and the CLI: upload to a bucket, create images from files, follow jobs."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from openims.client.session import ApiError, Session

CHUNK = 1024 * 1024
FINAL = ("SUCCESS", "FAIL")


@dataclass(frozen=True)
class DataDisk:
    """A data disk to import beside a system disk: ``BUCKET:KEY:SIZE_GB``."""

    image_url: str
    min_disk: int

    @classmethod
    def parse(cls, spec: str) -> DataDisk:
        url, sep, size = spec.rpartition(":")
        if not sep or ":" not in url or not size.isdigit():
            raise ValueError(f"data disk {spec!r}: expected BUCKET:KEY:SIZE_GB")
        return cls(url, int(size))


class JobFailed(Exception):
    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job.get('job_id')} failed: {job.get('error_code')}: {job.get('fail_reason')}")
        self.job = job


def _chunks(path: Path, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    """A file as chunks to stream, one in memory at a time; ``progress`` gets each chunk's size."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
            if progress is not None:
                progress(len(chunk))


def server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any] | None]]:
    """(id, decoded JSON data) per event of a text/event-stream; (None, None) for a comment (a keep-alive),
    so a reader can look at the clock while a job is quiet."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, json.loads("\n".join(data))
            event_id, data = None, []
        elif line.startswith(":"):
            yield None, None
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)


class ImsClient:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -------------------------------------------------------- buckets

    def make_bucket(self, bucket: str) -> None:
        self.session.request("PUT", f"/obs/{bucket}", expect=(200, 201))

    def list_buckets(self) -> list[str]:
        return [b["name"] for b in self.session.get("/obs").json()["buckets"]]

    def list_objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = self.session.get(f"/obs/{bucket}", params={"prefix": prefix}).json()["objects"]
        return objects

    def put_object(self, path: Path, bucket: str, key: str,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Stream a local file into ``bucket:key``; memory stays at one chunk whatever the size."""

        # A streamed body cannot be replayed: make sure the token is fresh before sending it.
        _ = self.session.token
        size = path.stat().st_size
        response = self.session.request("PUT", f"/obs/{bucket}/{key}", content=_chunks(path, progress),
                                        headers={"Content-Type": "application/octet-stream",
                                                 "Content-Length": str(size)}, expect=(201,))
        result: dict[str, Any] = response.json()
        return result

    # -------------------------------------------------------- images

    def create_image(self, *, image_url: str, name: str, min_disk: int, os_version: str | None = None,
                     data_disks: list[DataDisk] | None = None, **fields: Any) -> str:
        """POST /v2/cloudimages/action (system disk, optionally with data disks) → job id."""
        body: dict[str, Any] = {"image_url": image_url, "name": name, "min_disk": min_disk, **fields}
        if os_version:
            body["os_version"] = os_version
        if data_disks:
            body["data_images"] = [{"image_url": d.image_url, "min_disk": d.min_disk} for d in data_disks]
        job_id: str = self.session.request("POST", "/v2/cloudimages/action", json=body).json()["job_id"]
        return job_id

    def create_data_image(self, *, image_url: str, name: str, min_disk: int, **fields: Any) -> str:
        body = {"image_url": image_url, "name": name, "min_disk": min_disk, **fields}
        job_id: str = self.session.request("POST", "/v1/cloudimages/dataimages/action", json=body).json()["job_id"]
        return job_id

    def import_image(self, *, wait: bool = False, progress: Callable[[dict[str, Any]], None] | None = None,
                     timeout: float | None = None, **kw: Any) -> dict[str, Any]:
        """Create an image from a file; with ``wait`` follow the job and raise JobFailed on FAIL."""
        job_id = self.create_image(**kw)
        if not wait:
            return self.show_job(job_id)
        return self.wait_job(job_id, progress=progress, timeout=timeout)

    def show_job(self, job_id: str) -> dict[str, Any]:
        project = self.session.project_id
        if project is None:
            raise ApiError(0, "NoProject", "The token is not scoped to a project.")
        job: dict[str, Any] = self.session.get(f"/v1/{project}/jobs/{job_id}").json()
        return job

    def wait_job(self, job_id: str, *, progress: Callable[[dict[str, Any]], None] | None = None,
                 timeout: float | None = None, interval: float = 0.5) -> dict[str, Any]:
        """Follow a job to its end: its event stream (openims), or by polling a server without one.

        ``progress`` gets each state (a job, or an event with the job's status and entities); the
        final job is returned, or JobFailed raised.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.show_job(job_id)  # an unknown job is an error here, not a stream missing
        if progress is not None:
            progress(job)
        if job["status"] not in FINAL and self._follow_events(job_id, progress, deadline, interval):
            job = self.show_job(job_id)
        while job["status"] not in FINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(interval)
            job = self.show_job(job_id)
            if progress is not None:
                progress(job)
        if job["status"] == "FAIL":
            raise JobFailed(job)
        return job

    def _follow_events(self, job_id: str, progress: Callable[[dict[str, Any]], None] | None,
                       deadline: float | None, interval: float) -> bool:
        """Read GET /v1/{project}/jobs/{job_id}/events until the job's final event (True), reconnecting
        with Last-Event-ID after a lost connection; False when the server has no such stream (poll)."""
        path = f"/v1/{self.session.project_id}/jobs/{job_id}/events"
        last_id: str | None = None
        lost = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with self.session.stream("GET", path, headers=headers) as response:
                    if not response.headers.get("content-type", "").startswith("text/event-stream"):
                        return False
                    for event_id, data in server_sent_events(response.iter_lines()):
                        if deadline is not None and time.monotonic() > deadline:
                            raise TimeoutError(f"job {job_id} did not end in time")
                        last_id = event_id or last_id
                        if data is None:
                            continue
                        lost = 0
                        if progress is not None:
                            progress(data)
                        if data.get("status") in FINAL:
                            return True
            except ApiError as exc:
                if exc.status in (404, 405, 501):
                    return False  # an older server (or a proxy) without the stream
                lost += 1
                if exc.status != 0 or lost > 3:
                    return False  # polling still works where the stream does not
            time.sleep(interval)

    def list_images(self, **filters: Any) -> list[dict[str, Any]]:
        """Every matching image, following ``marker`` pages."""
        out: list[dict[str, Any]] = []
        params = {k: v for k, v in filters.items() if v is not None}
        params.setdefault("limit", 200)
        while True:
            page = self.session.get("/v2/cloudimages", params=params).json()["images"]
            out += page
            if len(page) < int(params["limit"]):
                return out
            params["marker"] = page[-1]["id"]

    def show_image(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self.session.get(f"/v2/images/{image_id}").json()
        return image

    def delete_image(self, image_id: str) -> None:
        self.session.request("DELETE", f"/v2/images/{image_id}", expect=(204,))

    # -------------------------------------------------------- image lifecycle

    def update_image(self, image_id: str, changes: dict[str, Any] | None = None,
                     remove: list[str] | None = None) -> dict[str, Any]:
        """PATCH /v2/cloudimages/{id}: ``changes`` are replaced (or added), ``remove`` names are removed."""
        ops: list[dict[str, Any]] = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in (changes or {}).items()]
        ops += [{"op": "remove", "path": f"/{k}"} for k in remove or []]
        image: dict[str, Any] = self.session.request("PATCH", f"/v2/cloudimages/{image_id}", json=ops).json()
        return image

    def export_image(self, image_id: str, bucket_url: str, file_format: str) -> str:
        """POST /v1/cloudimages/{id}/file → job id (imsNativeExportImageJob)."""
        body = {"bucket_url": bucket_url, "file_format": file_format}
        job_id: str = self.session.request("POST", f"/v1/cloudimages/{image_id}/file", json=body).json()["job_id"]
        return job_id

    def copy_image(self, image_id: str, name: str, description: str | None = None) -> str:
        """POST /v1/cloudimages/{id}/copy → job id (imsCopyImageInRegionJob)."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        job_id: str = self.session.request("POST", f"/v1/cloudimages/{image_id}/copy", json=body).json()["job_id"]
        return job_id

    def register_image(self, image_id: str, image_url: str) -> str:
        """PUT /v1/cloudimages/{id}/upload → job id (imsNativeImportImageJob)."""
        job_id: str = self.session.request("PUT", f"/v1/cloudimages/{image_id}/upload",
                                           json={"image_url": image_url}).json()["job_id"]
        return job_id

    def download_image(self, image_id: str, dest: Path, progress: Callable[[int, int | None], None] | None = None,
                       ) -> int:
        """GET /v2/images/{id}/file streamed into ``dest`` (written beside it, renamed when complete).

        ``progress`` gets (bytes so far, total or None). When the server sends ``Content-MD5`` the
        file is checked against it. Returns the number of bytes written.
        """
        url = self.session.url(f"/v2/images/{image_id}/file")
        partial = dest.with_name(f".{dest.name}.part")
        digest = hashlib.md5(usedforsecurity=False)
        done = 0
        try:
            with self.session.http.stream("GET", url, headers={"X-Auth-Token": self.session.token}) as r:
                if r.status_code != 200:
                    r.read()
                    raise ApiError.from_response(r)
                total = int(r.headers["content-length"]) if r.headers.get("content-length", "").isdigit() else None
                with open(partial, "wb") as out:
                    for chunk in r.iter_bytes(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                expected = r.headers.get("content-md5")
            # Glance sends the hex checksum; RFC 1864 says base64: accept either.
            if expected and expected.lower() != digest.hexdigest() \
                    and expected != base64.b64encode(digest.digest()).decode():
                raise ApiError(0, "ChecksumMismatch", f"the downloaded data does not match its Content-MD5 "
                                                      f"({digest.hexdigest()} instead of {expected})")
            partial.replace(dest)
        except httpx.TransportError as exc:
            raise ApiError(0, "ConnectionError", f"download of image {image_id} failed: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return done

    def upload_image(self, image_id: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        """PUT /v2/images/{id}/file: the file streamed as the queued image's data (one chunk in memory)."""

        _ = self.session.token  # a streamed body cannot be replayed: refresh the token first
        self.session.request("PUT", f"/v2/images/{image_id}/file", content=_chunks(path, progress),
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(path.stat().st_size)}, expect=(204,))

    # -------------------------------------------------------- quota and OS versions

    def show_quota(self, project: str | None = None) -> dict[str, Any]:
        """The image quota of the token's project, or (administrators) of another project by id or name."""
        params = {"project_id": project} if project else None
        quota: dict[str, Any] = self.session.get("/v1/cloudimages/quota", params=params).json()
        return quota

    def set_quota(self, images: int | None, project: str | None = None) -> dict[str, Any]:
        """Set (None: reset to the default) a project's image quota; account administrators only."""
        params = {"project_id": project} if project else None
        body = {"quotas": {"resources": [{"type": "image", "quota": images}]}}
        quota: dict[str, Any] = self.session.request("PUT", "/v1/cloudimages/quota", params=params,
                                                     json=body).json()
        return quota

    def list_os_versions(self) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.session.get("/v1/cloudimages/os_version").json()
        return versions
