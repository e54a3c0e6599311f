"""catalog.members: who may share, answer and see; the member state machine."""

from __future__ import annotations

import pytest

from openims.catalog import images, members
from openims.catalog.images import MemberStatus
from openims.errors import ImsBadRequest


def test_a_member_answers_and_may_change_its_mind_but_never_goes_back_to_pending() -> None:
    for current in MemberStatus:
        assert MemberStatus.PENDING not in members.VALID_TRANSITIONS[current]
        assert {MemberStatus.ACCEPTED, MemberStatus.REJECTED} <= members.VALID_TRANSITIONS[current]


@pytest.mark.parametrize("value", ["pending", "ACCEPTED", "", None, 1])
def test_only_accepted_or_rejected_is_an_answer(value: object) -> None:
    with pytest.raises(ImsBadRequest, match="use accepted, rejected"):
        members.answer(value)
    assert members.answer("rejected") is MemberStatus.REJECTED


@pytest.mark.parametrize("value", ["ACCEPTED", "", None, 1, "maybe"])
def test_glance_answers_also_pending(value: object) -> None:
    assert members.answer("pending", glance=True) is MemberStatus.PENDING
    with pytest.raises(ImsBadRequest, match="use accepted, rejected, pending"):
        members.answer(value, glance=True)


def test_the_member_status_filter_defaults_to_accepted() -> None:
    assert images.statuses_for_filter(None) == images.statuses_for_filter("") == ("accepted",)
    assert set(images.statuses_for_filter("all")) == {"pending", "accepted", "rejected"}
    with pytest.raises(ImsBadRequest):
        images.statuses_for_filter("maybe")
