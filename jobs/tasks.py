"""Job tasks: run one job, and the periodic sweep (beat: ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from . import services


@shared_task(name="jobs.run", ignore_result=True, acks_late=True)
def run(job_id: str) -> str | None:
    return services.run(job_id)


@shared_task(name="jobs.sweep", ignore_result=True)
def sweep() -> int:
    return services.sweep()
