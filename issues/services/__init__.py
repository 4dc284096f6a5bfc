"""Every write of the tracker, by capability (issues, labels, comments, bulk; the CSV import is issues/csv_io).
Each function writes its rows and their timeline events in one transaction."""

from ..csv_io.importer import ImportResult, issue_import_csv
from ..fastpath.session import LABEL_USE_LOCK
from .bulk import BulkConflict, BulkInvalid, BulkItem, issue_bulk_set_status
from .comments import comment_create
from .issues import UPDATABLE_FIELDS, issue_create, issue_update
from .labels import (
    LABEL_DELETE_WAIT_MS,
    LabelBusy,
    LabelNameTaken,
    LabelsChanged,
    label_create,
    label_delete,
    label_update,
    labels_ensure,
)
from .projects import (
    LastMaintainer,
    ProjectKeyTaken,
    membership_remove,
    membership_set,
    project_create,
    project_update,
)

__all__ = [
    "LABEL_DELETE_WAIT_MS",
    "LABEL_USE_LOCK",
    "UPDATABLE_FIELDS",
    "BulkConflict",
    "BulkInvalid",
    "BulkItem",
    "ImportResult",
    "LabelBusy",
    "LabelNameTaken",
    "LabelsChanged",
    "LastMaintainer",
    "ProjectKeyTaken",
    "comment_create",
    "issue_bulk_set_status",
    "issue_create",
    "issue_import_csv",
    "issue_update",
    "label_create",
    "label_delete",
    "label_update",
    "labels_ensure",
    "membership_remove",
    "membership_set",
    "project_create",
    "project_update",
]
