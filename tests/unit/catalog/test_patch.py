"""catalog.patch and the two rule tables on it: IMS PATCH (lifecycle.RULES) and Glance JSON patch (native.RULES)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from openims.catalog import lifecycle, native, patch
from openims.catalog.patch import Draft, PatchOp
from openims.db.models import Image
from openims.errors import ImsBadRequest, ImsConflict, ImsForbidden

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _image(**props: Any) -> Image:
    return Image(id="i", name="n", description="", status="active", visibility="private", protected=False,
                 container_format="bare", disk_format="qcow2", min_disk=40, min_ram=0, virtual_size=None,
                 properties={"virtual_env_type": "FusionCompute", **props}, updated_at=NOW)


def _ims(image: Image, *ops: PatchOp) -> Draft:
    draft = Draft.of(image)
    patch.apply(image, draft, list(ops), lifecycle.RULES, lifecycle._attribute)
    return draft


def _glance(image: Image, *ops: PatchOp) -> Draft:
    draft = Draft.of(image)
    patch.apply(image, draft, list(ops), native.RULES, native._custom_rule)
    return draft


class TestValueChecks:
    def test_integers(self) -> None:
        assert patch.integer("x", 5) == 5
        assert patch.integer("x", "40", strings=True) == 40
        for bad in ("40", True, 1.5, None):
            with pytest.raises(ImsBadRequest, match="must be an integer"):
                patch.integer("x", bad)
        with pytest.raises(ImsBadRequest, match="between 0 and 10"):
            patch.integer("x", 11, high=10)

    def test_texts_and_flags(self) -> None:
        assert patch.text("x", True, coerce=True) == "true" and patch.text("x", 3, coerce=True) == "3"
        with pytest.raises(ImsBadRequest):
            patch.text("x", True)
        with pytest.raises(ImsBadRequest, match="longer than 255"):
            patch.text("x", "a" * 256)
        assert patch.flag("x", "TRUE") == "true" and patch.flag("x", False) == "false"
        with pytest.raises(ImsBadRequest):
            patch.flag("x", "yes")


class TestImsRules:
    def test_integers_may_be_strings_and_flags_booleans(self) -> None:
        draft = _ims(_image(), PatchOp("replace", "min_disk", "50"), PatchOp("add", "__support_kvm", True))
        assert draft.min_disk == 50 and draft.properties["__support_kvm"] == "true"

    def test_what_cannot_be_removed_or_changed(self) -> None:
        with pytest.raises(ImsBadRequest, match="name cannot be removed"):
            _ims(_image(), PatchOp("remove", "name"))
        with pytest.raises(ImsBadRequest, match="cannot be changed"):
            _ims(_image(), PatchOp("replace", "status", "active"))
        with pytest.raises(ImsBadRequest, match="managed by the service"):
            _ims(_image(), PatchOp("add", "__imagetype", "gold"))
        with pytest.raises(ImsBadRequest, match="no attribute"):
            _ims(_image(), PatchOp("remove", "mine"))

    def test_removing_resets_to_the_default(self) -> None:
        draft = _ims(_image(enterprise_project_id="x", __os_version="CentOS 7.0 64bit"),
                     PatchOp("remove", "enterprise_project_id"), PatchOp("remove", "__os_version"),
                     PatchOp("remove", "min_ram"))
        assert draft.properties["enterprise_project_id"] == "0" and draft.properties["__platform"] == "Other"
        assert "__os_version" not in draft.properties and draft.min_ram == 0

    def test_an_operation_without_a_value_is_refused(self) -> None:
        with pytest.raises(ImsBadRequest, match="needs a value"):
            _ims(_image(), PatchOp("add", "mine", has_value=False))


class TestGlanceRules:
    def test_values_are_typed(self) -> None:
        with pytest.raises(ImsBadRequest, match="integer"):
            _glance(_image(), PatchOp("replace", "min_disk", "50"))
        with pytest.raises(ImsBadRequest, match="string"):
            _glance(_image(), PatchOp("add", "mine", 5))

    def test_core_attributes_are_never_removed(self) -> None:
        with pytest.raises(ImsForbidden, match="may not be removed"):
            _glance(_image(), PatchOp("remove", "min_disk"))

    def test_replace_and_remove_of_a_missing_property_are_conflicts(self) -> None:
        with pytest.raises(ImsConflict):
            _glance(_image(), PatchOp("replace", "mine", "x"))
        with pytest.raises(ImsConflict):
            _glance(_image(), PatchOp("remove", "mine"))
        draft = _glance(_image(), PatchOp("add", "mine", "x"), PatchOp("replace", "mine", "y"))
        assert draft.properties["mine"] == "y"

    def test_removing_a_kept_attribute_is_ignored_and_changes_nothing(self) -> None:
        draft = _glance(_image(), PatchOp("remove", "virtual_env_type"), PatchOp("remove", "__os_version"))
        assert draft.changed == set() and draft.properties["virtual_env_type"] == "FusionCompute"

    def test_formats_change_only_while_queued(self) -> None:
        with pytest.raises(ImsForbidden, match="queued"):
            _glance(_image(), PatchOp("replace", "disk_format", "raw"))
        queued = _image()
        queued.status = "queued"
        assert _glance(queued, PatchOp("replace", "disk_format", "raw")).disk_format == "raw"


def test_a_draft_changes_the_image_only_when_written() -> None:
    image = _image()
    draft = _ims(image, PatchOp("replace", "name", "other"))
    assert image.name == "n"
    draft.write_to(image)
    assert image.name == "other"
