"""The formats the import reads, declared: a ``Preset`` per format (our own ``native`` and the exports of Jira,
GitLab and GitHub: which header feeds which field, value maps, date style, repeated columns), and ``detect``, which
recognises a format from its header."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """One format, declared: ``columns`` maps each field to the header spellings that feed it (first present wins;
    the others are ignored), ``statuses``/``priorities`` map source values to ours (besides our own values, always
    accepted), ``dates`` names the date parser, ``first_of_list`` the fields whose cell is a comma list of which
    the first is taken (GitLab's and GitHub's assignees: an issue here has one), ``refuse_duplicates`` whether a
    repeated header is refused (native) or read (labels) and otherwise ignored (the others), ``detect`` the header
    names that recognise the format (all of one of the tuples)."""

    name: str
    columns: Mapping[str, Sequence[str]]
    statuses: Mapping[str, str] = field(default_factory=dict)
    priorities: Mapping[str, str] = field(default_factory=dict)
    dates: str = "iso"
    first_of_list: frozenset[str] = frozenset()
    refuse_duplicates: bool = False
    detect: Sequence[Sequence[str]] = ()


NATIVE = Preset(
    name="native",
    columns={
        "title": ("title",),
        "description": ("description",),
        "status": ("status",),
        "priority": ("priority",),
        "assignee": ("assignee",),
        "labels": ("labels",),
        "created_at": ("created_at",),
        "updated_at": ("updated_at",),
        "resolved_at": ("resolved_at",),
        "source_key": ("key",),
    },
    refuse_duplicates=True,
)

JIRA = Preset(
    name="jira",
    columns={
        "title": ("summary",),
        "description": ("description",),
        "status": ("status",),
        "status_category": ("status category",),
        "priority": ("priority",),
        "assignee": ("assignee",),
        "labels": ("labels",),
        "created_at": ("created",),
        "updated_at": ("updated",),
        "resolved_at": ("resolved",),
        "source_key": ("issue key",),
    },
    statuses={
        "To Do": "open",
        "Open": "open",
        "Backlog": "open",
        "Selected for Development": "open",
        "Reopened": "open",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Resolved": "resolved",
        "Done": "closed",
        "Closed": "closed",
    },
    priorities={
        "Highest": "critical",
        "Blocker": "critical",
        "Critical": "critical",
        "High": "high",
        "Major": "high",
        "Medium": "medium",
        "Low": "low",
        "Minor": "low",
        "Lowest": "low",
        "Trivial": "low",
    },
    dates="jira",
    detect=(("summary", "issue key"), ("summary", "issue id")),
)

GITLAB = Preset(
    name="gitlab",
    columns={
        "title": ("title",),
        "description": ("description",),
        "status": ("state",),
        "assignee": ("assignee username", "assignee"),
        "labels": ("labels",),
        "created_at": ("created at (utc)",),
        "updated_at": ("updated at (utc)",),
        "resolved_at": ("closed at (utc)",),
        "source_key": ("iid", "issue id"),
    },
    statuses={"Open": "open", "Opened": "open", "Closed": "closed"},
    dates="gitlab",
    first_of_list=frozenset({"assignee"}),
    detect=(("title", "created at (utc)"), ("title", "iid", "state"), ("title", "issue id", "state")),
)

GITHUB = Preset(
    name="github",
    columns={
        "title": ("title",),
        "description": ("body", "description"),
        "status": ("status",),
        "priority": ("priority",),
        "assignee": ("assignees",),
        "labels": ("labels",),
        "source_key": ("url",),
    },
    statuses={
        "Todo": "open",
        "To Do": "open",
        "Backlog": "open",
        "Ready": "open",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Done": "closed",
    },
    priorities={"P0": "critical", "P1": "high", "P2": "medium", "P3": "low", "Urgent": "critical"},
    first_of_list=frozenset({"assignee"}),
    detect=(("title", "assignees"), ("title", "url", "status")),
)

JIRA_STATUS_CATEGORIES = {"to do": "open", "in progress": "in_progress", "done": "closed"}
PRESETS = {preset.name: preset for preset in (NATIVE, JIRA, GITLAB, GITHUB)}


def detect(names: Sequence[str]) -> Preset:
    """The format of a header (lower-cased, trimmed names): the first foreign preset whose ``detect`` names are all
    there, else native (a native header without ``title`` is then refused as such)."""
    present = set(names)
    for preset in (JIRA, GITLAB, GITHUB):
        if any(all(name in present for name in group) for group in preset.detect):
            return preset
    return NATIVE
