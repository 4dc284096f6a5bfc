"""Issue tasks: writing the search documents of issues a large insert queued (``issues.search_index``); run on
commit of such an insert and by the beat sweep (``CELERY_BEAT_SCHEDULE``), which also catches a lost hand-off."""

from celery import shared_task

from . import search_index


@shared_task(name="issues.index_search", ignore_result=True)
def index_search() -> int:
    return search_index.index_pending()
