"""Where jobs keep their files (an import's upload, an export's CSV): Django's storage API, so any backend works.
``STORAGES["jobs"]`` when the deployment configures one (django-storages: S3, GCS, Azure...), else a local folder,
JOBS_STORAGE_DIR (a path every web host and worker must share)."""

from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty


class _JobStorage(LazyObject):
    """Built on first use, from the settings as they are then (tests change JOBS_STORAGE_DIR)."""

    def _setup(self) -> None:
        if "jobs" in settings.STORAGES:
            self._wrapped = storages["jobs"]
        else:
            self._wrapped = FileSystemStorage(location=settings.JOBS_STORAGE_DIR)


_storage = _JobStorage()


def job_storage() -> Storage:
    """The jobs' storage (the ``storage`` callable of ``Job``'s file fields)."""
    return _storage  # type: ignore[return-value]  # a LazyObject standing for the Storage


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("JOBS_STORAGE_DIR", "STORAGES"):
        _storage._wrapped = empty  # type: ignore[assignment]  # built again on next use


setting_changed.connect(_reset)
