"""Errors the tracker's domain raises; each carries its HTTP answer (``api.exceptions.DomainError``)."""

from typing import Any

from rest_framework.request import Request

from api.exceptions import DomainError


class VersionConflict(DomainError):
    """The client's version is not the issue's current one; ``current`` is the issue as it is now. A 409, or a
    412 when a PATCH gave its version in ``If-Match`` (and not in the body)."""

    status_code = 409
    code = "version_conflict"

    def __init__(self, current: Any, expected: int | None = None) -> None:
        super().__init__(f"version conflict on issue {current.pk}")
        self.current = current
        self.expected = expected
        self.precondition = False  # set by the view when the version came from If-Match: a 412
        self._current_issue: Any = None

    def status_for(self, request: Request | None) -> int:
        return 412 if self.precondition else self.status_code

    def current_issue(self) -> Any:
        """The issue as it is now, read again with its label names."""
        if self._current_issue is None:
            from . import selectors
            from .access import SYSTEM

            # Raised only once the caller was found to see the issue (services.issue_update).
            self._current_issue = selectors.issue_get(SYSTEM, issue_id=self.current.pk)
        return self._current_issue

    def body(self) -> dict[str, Any]:
        from .serializers import IssueSerializer

        current = self.current_issue()
        return {
            "detail": f"Version conflict: the issue is at version {current.version}.",
            "code": self.code,
            "current_version": current.version,
            "current": IssueSerializer(current).data,
        }

    def headers(self) -> dict[str, str]:
        return {"ETag": f'"{self.current_issue().version}"'}


class AssigneeCannotSee(DomainError):
    """The assignee cannot see the issue's project (a private one they are not a member of): a 400 on ``assignee``."""

    def __init__(self, user_id: int, project_key: str) -> None:
        super().__init__(f"User {user_id} cannot see project {project_key} and cannot be assigned its issues.")

    def body(self) -> dict[str, Any]:
        return {"assignee": [str(self)]}
