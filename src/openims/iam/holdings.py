"""Which roles a user holds, and where: through its groups (Huawei's grants) or directly (Keystone's).

Every question "does this user hold that role there" reads ``held()``, so the two kinds of grant
can never disagree about who may do what.
"""

from __future__ import annotations

from sqlalchemy import Subquery, select, union_all

from openims.db.models import Grant, GroupMember, UserGrant


def held() -> Subquery:
    """SQL rows ``(user_id, role_id, target_type, target_id)``: every grant each user holds."""
    via_groups = (select(GroupMember.user_id.label("user_id"), Grant.role_id, Grant.target_type, Grant.target_id)
                  .join(Grant, Grant.group_id == GroupMember.group_id))
    direct = select(UserGrant.user_id, UserGrant.role_id, UserGrant.target_type, UserGrant.target_id)
    return union_all(via_groups, direct).subquery("held")
