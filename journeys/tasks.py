"""Celery tasks of journeys (thin: each calls one service)."""

from celery import shared_task

from .services import journey_dispatch_pending, journeys_dispatch_pending


@shared_task(name="journeys.dispatch_journey", ignore_result=True)
def dispatch_journey_task(journey_id: str) -> int:
    """After an enroll or a turn-on: schedule the journey's new enrollments."""
    return journey_dispatch_pending(journey_id=journey_id)


@shared_task(name="journeys.dispatch_journeys", ignore_result=True)
def dispatch_journeys_task() -> int:
    """On beat: what an enroll's task could not schedule (a lost task, a full plan) is picked up here."""
    return journeys_dispatch_pending()
