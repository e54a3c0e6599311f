"""Which handler runs which job type: every handler module's table, in one place."""

from __future__ import annotations

from openims.worker import handlers, import_handlers, lifecycle_handlers, member_handlers
from openims.worker.handlers import Handler

HANDLERS: dict[str, Handler] = {**handlers.HANDLERS, **lifecycle_handlers.HANDLERS, **member_handlers.HANDLERS,
                                **import_handlers.HANDLERS}
