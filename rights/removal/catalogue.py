"""The catalogue backend: our own copy of the article, and the page that shows it."""

from __future__ import annotations

from rights.db import case_lock, joined_atomic
from rights.models import ContentItem, RemovalAction, Target
from rights.selectors import item_held_elsewhere
from rights.states import VISIBLE_CONTENT, ContentStatus
from rights.workflow import transition

# What each action makes of the content, from the statuses it applies to.
MOVES: dict[str, tuple[str, frozenset[str]]] = {
    RemovalAction.DISABLE: (ContentStatus.DISABLED, VISIBLE_CONTENT),
    RemovalAction.REMOVE: (
        ContentStatus.REMOVED,
        frozenset({ContentStatus.LIVE, ContentStatus.RESTORED, ContentStatus.DISABLED}),
    ),
    RemovalAction.RESTORE: (
        ContentStatus.RESTORED,
        frozenset({ContentStatus.DISABLED, ContentStatus.REMOVED}),
    ),
}


class CatalogueBackend:
    name = "catalogue"
    local = True

    def apply(self, *, target: Target, action: str, key: str) -> None:
        if target.content_item_id is None:
            return
        with joined_atomic():
            case_lock(target.case_id)
            item = ContentItem.objects.select_for_update().get(pk=target.content_item_id)
            self.apply_locked(target=target, item=item, action=action, key=key)

    def apply_locked(self, *, target: Target, item: ContentItem, action: str, key: str) -> None:
        """`apply`, for a caller that already holds the case's and the item's row locks (the
        fail-safe, which locks a whole chunk of items at once, in id order)."""
        to_status, applies_to = MOVES[action]
        if item.status not in applies_to:
            return  # already in the state asked for, or past it: repeating is success
        if action == RemovalAction.RESTORE and item_held_elsewhere(
            content_item_id=item.pk, case_id=target.case_id
        ):
            return  # another case keeps it down (or is taking it down): not ours to undo
        # A final removal erases the stored body; the page then answers 410 Gone.
        update = {"body": ""} if action == RemovalAction.REMOVE else None
        transition(
            item,
            to_status,
            actor="system:catalogue",
            data={"key": key, "target": target.pk},
            update=update,
            stream=target.case.audit_stream(),
        )
