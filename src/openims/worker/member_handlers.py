"""Handlers for the image-sharing batch jobs (``/v1/cloudimages/members``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openims.catalog import members
from openims.catalog.jobs import JobStatus, JobType, finish
from openims.worker.context import JobContext
from openims.worker.handlers import Handler


class MemberBatchHandler:
    """imsAddImageMembersJob / imsDelImageMembersJob / imsUpdateImageMembersJob.

    The whole batch is one fenced transaction: the memberships and the job's SUCCESS commit
    together, so a worker that dies half-way leaves nothing behind and the retry starts clean.
    """

    def run(self, ctx: JobContext) -> None:
        batch = members.MemberBatch.from_json(ctx.job.payload)
        with ctx.fenced() as (s, job):
            now = ctx.rt.clock()
            outcome = members.run_batch(s, job.job_type, job.project_id, batch, now)
            # As the job reference shows: add/update list every item; a delete job lists only what
            # could not be removed (its success example has an empty list).
            shown = outcome.failures if job.job_type == JobType.DEL_IMAGE_MEMBERS.value else outcome.results
            job.entities = {**job.entities, "results": shown}
            if outcome.all_failed:
                first = outcome.failures[0]
                reason = first["fail_reason"]
                if len(outcome.failures) > 1:
                    reason = f"all {len(outcome.failures)} items failed; first: {reason}"
                finish(job, JobStatus.FAIL, now, error_code=first["error_code"], fail_reason=reason)
            else:
                finish(job, JobStatus.SUCCESS, now)

    def revert(self, ctx: JobContext, session: Session) -> None:
        """Nothing to undo: the batch's writes roll back with its transaction when it fails."""


HANDLERS: dict[str, Handler] = {
    JobType.ADD_IMAGE_MEMBERS.value: MemberBatchHandler(),
    JobType.DEL_IMAGE_MEMBERS.value: MemberBatchHandler(),
    JobType.UPDATE_IMAGE_MEMBERS.value: MemberBatchHandler(),
}
