"""My recognitions on /agent/ (issue 12): the agent's recent praise, pushed live.

The feedback workflow (crm) creates Recognition rows, usually in a Celery worker; crm
never imports this layer, so the push hangs on the model's post_save signal, sent
to the agent's open pages once the workflow's transaction commits.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from context import events
from crm.card import iso
from crm.models import Recognition

RECENT_RECOGNITIONS = 10


def recognition_event(recognition: Recognition) -> dict[str, Any]:
    """What the page shows of one recognition: the customer's words and when."""
    feedback = recognition.feedback
    return {
        "type": "recognition",
        "id": str(recognition.pk),
        "quote": recognition.quote,
        "rating": feedback.rating,
        "created_at": iso(recognition.created_at),
    }


def recognitions_recent(agent, *, limit: int = RECENT_RECOGNITIONS) -> list[dict[str, Any]]:
    """The agent's newest recognitions (recognition_by_staff_idx)."""
    rows = Recognition.objects.filter(staff=agent).select_related("feedback").order_by("-created_at")[:limit]
    return [recognition_event(r) for r in rows]


def _recognition_saved(sender, instance: Recognition, created: bool, **kwargs) -> None:
    if created and not kwargs.get("raw"):
        events.publish_on_commit(instance.staff_id, recognition_event(instance), remember=False)


def connect() -> None:
    post_save.connect(_recognition_saved, sender=Recognition, dispatch_uid="context.recognitions.push")
