"""The event types the write paths record (``hooks.models.Event``), as plain strings for the services' imports: this
module imports nothing, so ``issues.services`` can import it without loading the webhooks' models."""

ISSUE_CREATED = "issue.created"
ISSUE_UPDATED = "issue.updated"
ISSUE_COMMENTED = "issue.commented"
ISSUES_IMPORTED = "issues.imported"
PING = "ping"
