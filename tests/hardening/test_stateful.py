"""Random histories against a simple model: a hypothesis RuleBasedStateMachine drives the API.

Rules: create, PATCH with a fresh version (body or If-Match), PATCH with a stale version, label
replace, comment, bulk status and CSV import (the last two when those endpoints exist), each with
valid and invalid input. The model predicts every answer; after every step the invariants are checked
against the database:

- each issue's fields and label set (ignoring case) are the model's;
- its version is 1 + its accepted changes (a write that changes nothing, or only a label's case, is none);
- its timeline is exactly the events predicted: ``created``, then one event per changed field of each
  accepted change, one ``commented`` per comment (which does not bump the version);
- ``resolved_at`` agrees with the status history in that timeline;
- a rejected write (400/409/412) leaves no trace: no row added, changed or removed anywhere.

STATEFUL_EXAMPLES and STATEFUL_STEPS bound the run (CI default 30 x 30); the steps run are printed.
"""

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Max, Sum
from django.urls import NoReverseMatch, reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from issues.models import DONE_STATUSES, Comment, Issue, IssueEvent, Label
from tests.factories import UserFactory
from tests.hardening.conftest import STATEFUL_STATS
from tests.helpers import make_client

STATEFUL_EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "30"))
STATEFUL_STEPS = int(os.environ.get("STATEFUL_STEPS", "30"))


def has_route(name: str) -> bool:
    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


HAS_BULK = has_route("issue-bulk-status")
HAS_IMPORT = has_route("issue-import-csv")

STATUSES = ["open", "in_progress", "resolved", "closed"]
PRIORITIES = ["low", "medium", "high", "critical"]
FIELD_EVENTS = (
    ("title", "title_changed"),
    ("description", "description_changed"),
    ("status", "status_changed"),
    ("priority", "priority_changed"),
    ("assignee", "assignee_changed"),
)

# Small alphabets so that collisions (same title, same label in another case) are frequent.
titles = st.sampled_from(["Login fails", "  padded  ", "x", "Crash", "   ", "", "t" * 256, "Ünïcode ✓"])
descriptions = st.sampled_from(["", "Steps", "Steps\nmore", "  spaced  "])
label_names = st.sampled_from(["bug", "Bug", "BUG", " ui ", "UI", "urgent", "a,b", ""])
statuses = st.sampled_from([*STATUSES, "bogus"])
priorities = st.sampled_from([*PRIORITIES, "urgent!"])


def valid_title(raw: str) -> bool:
    return 1 <= len(raw.strip()) <= 255


def valid_label(raw: str) -> bool:
    name = raw.strip()
    return 1 <= len(name) <= 50 and "," not in name and ";" not in name


@dataclass
class ModelIssue:
    title: str
    description: str
    status: str
    priority: str
    assignee: int | None
    labels: frozenset[str]  # lower-cased names
    created_status: str
    accepted: int = 0  # accepted changes: writes that changed something
    events: list[str] = field(default_factory=lambda: ["created"])

    @property
    def version(self) -> int:
        return 1 + self.accepted


class IssueHistories(RuleBasedStateMachine):
    client: Any = None
    user_ids: tuple[int, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()  # every run starts from the same empty tracker
        self.model: dict[int, ModelIssue] = {}
        STATEFUL_STATS.runs += 1

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    # -- helpers -------------------------------------------------------------------------------------

    def step(self, name: str) -> None:
        STATEFUL_STATS.steps += 1
        STATEFUL_STATS.rules[name] += 1

    def fingerprint(self) -> tuple:
        """Everything a rejected write must leave as it was."""
        issues = Issue.objects.aggregate(n=Max("id"), versions=Sum("version"), updated=Max("updated_at"))
        return (
            Issue.objects.count(),
            tuple(sorted(issues.items())),
            IssueEvent.objects.count(),
            IssueEvent.objects.aggregate(m=Max("id"))["m"],
            Comment.objects.count(),
            tuple(Label.objects.order_by("id").values_list("id", "name")),
            tuple(Issue.labels.through.objects.order_by("id").values_list("issue_id", "label_id")),
        )

    def expect_rejected(self, before: tuple, response: Any, *codes: int) -> None:
        assert response.status_code in codes, (response.status_code, response.content[:500])
        assert response["Content-Type"].startswith("application/json")
        assert self.fingerprint() == before, "a rejected write left a trace"

    def pick(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.model)), label="issue")

    def changes_of(self, issue: ModelIssue, body: dict[str, Any]) -> list[str]:
        """The events an accepted PATCH/label replace with ``body`` records, in timeline order."""
        events = []
        for name, event in FIELD_EVENTS:
            if name not in body:
                continue
            new = body[name].strip() if name == "title" else body[name]
            if new != getattr(issue, name):
                events.append(event)
        if "labels" in body and frozenset(n.strip().lower() for n in body["labels"]) != issue.labels:
            events.append("labels_changed")
        return events

    def apply(self, issue: ModelIssue, body: dict[str, Any]) -> None:
        events = self.changes_of(issue, body)
        for name in ("title", "description", "status", "priority", "assignee"):
            if name in body:
                setattr(issue, name, body[name].strip() if name == "title" else body[name])
        if "labels" in body:
            issue.labels = frozenset(n.strip().lower() for n in body["labels"])
        if events:
            issue.accepted += 1
            issue.events.extend(events)

    def body_valid(self, body: dict[str, Any]) -> bool:
        return (
            ("title" not in body or valid_title(body["title"]))
            and body.get("status", "open") in STATUSES
            and body.get("priority", "low") in PRIORITIES
            and body.get("assignee") in (None, *self.user_ids)
            and all(valid_label(name) for name in body.get("labels", []))
        )

    def issue_bodies(self, data: st.DataObject, *, create: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        optional = {
            "description": descriptions,
            "status": statuses,
            "priority": priorities,
            "assignee": st.sampled_from([None, *self.user_ids, 2**40]),
            "labels": st.lists(label_names, max_size=4),
        }
        if create or data.draw(st.booleans(), label="with title"):
            body["title"] = data.draw(titles, label="title")
        for name, strategy in optional.items():
            if data.draw(st.booleans(), label=f"with {name}"):
                body[name] = data.draw(strategy, label=name)
        return body

    # -- rules ---------------------------------------------------------------------------------------

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        self.step("create")
        body = self.issue_bodies(data, create=True)
        before = self.fingerprint()
        response = self.client.post("/api/issues", body, format="json")
        if not self.body_valid(body):
            self.expect_rejected(before, response, 400)
            return
        assert response.status_code == 201, response.content[:500]
        status = body.get("status", "open")
        self.model[response.json()["id"]] = ModelIssue(
            title=body["title"].strip(),
            description=body.get("description", ""),
            status=status,
            priority=body.get("priority", "medium"),
            assignee=body.get("assignee"),
            labels=frozenset(n.strip().lower() for n in body.get("labels", [])),
            created_status=status,
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data(), if_match=st.booleans())
    def patch_fresh(self, data: st.DataObject, if_match: bool) -> None:
        self.step("patch_fresh")
        issue_id = self.pick(data)
        issue = self.model[issue_id]
        body = self.issue_bodies(data, create=False)
        headers = {}
        if if_match:
            headers["HTTP_IF_MATCH"] = f'"{issue.version}"'
        else:
            body["version"] = issue.version
        before = self.fingerprint()
        response = self.client.patch(f"/api/issues/{issue_id}", body, format="json", **headers)
        if not self.body_valid(body):
            self.expect_rejected(before, response, 400)
            return
        assert response.status_code == 200, response.content[:500]
        self.apply(issue, body)
        assert response.json()["version"] == issue.version

    @precondition(lambda self: self.model)
    @rule(data=st.data(), if_match=st.booleans(), ahead=st.booleans())
    def patch_stale(self, data: st.DataObject, if_match: bool, ahead: bool) -> None:
        self.step("patch_stale")
        issue_id = self.pick(data)
        issue = self.model[issue_id]
        stale = issue.version + 1 if ahead or issue.version == 1 else issue.version - 1
        body: dict[str, Any] = {"title": "stale write", "status": "closed", "labels": ["stale"]}
        headers = {}
        if if_match:
            headers["HTTP_IF_MATCH"] = f'"{stale}"'
        else:
            body["version"] = stale
        before = self.fingerprint()
        response = self.client.patch(f"/api/issues/{issue_id}", body, format="json", **headers)
        self.expect_rejected(before, response, 412 if if_match else 409)
        assert response.json()["current_version"] == issue.version

    @precondition(lambda self: self.model)
    @rule(data=st.data(), names=st.lists(label_names, max_size=4), version=st.sampled_from(["none", "fresh", "stale"]))
    def replace_labels(self, data: st.DataObject, names: list[str], version: str) -> None:
        self.step("replace_labels")
        issue_id = self.pick(data)
        issue = self.model[issue_id]
        body: Any = list(names)
        if version != "none":
            body = {"labels": names, "version": issue.version if version == "fresh" else issue.version + 1}
        before = self.fingerprint()
        response = self.client.put(f"/api/issues/{issue_id}/labels", body, format="json")
        if not all(valid_label(name) for name in names):
            self.expect_rejected(before, response, 400)
        elif version == "stale":
            self.expect_rejected(before, response, 409)
        else:
            assert response.status_code == 200, response.content[:500]
            self.apply(issue, {"labels": names})
            assert response.json()["version"] == issue.version

    @precondition(lambda self: any(issue.labels for issue in self.model.values()))
    @rule(data=st.data(), how=st.sampled_from([str.upper, str.title, str.swapcase]))
    def relabel_case_only(self, data: st.DataObject, how: Any) -> None:
        """The same labels in another case: not a change (no version, no event)."""
        self.step("relabel_case_only")
        issue_id = data.draw(st.sampled_from(sorted(pk for pk, issue in self.model.items() if issue.labels)))
        issue = self.model[issue_id]
        names = [how(name) for name in sorted(issue.labels)]
        response = self.client.put(f"/api/issues/{issue_id}/labels", names, format="json")
        assert response.status_code == 200, response.content[:500]
        self.apply(issue, {"labels": names})
        assert response.json()["version"] == issue.version

    @precondition(lambda self: self.model)
    @rule(data=st.data(), text=st.sampled_from(["Looks good", "  trimmed  ", "", "   ", "x" * 10_001]))
    def comment(self, data: st.DataObject, text: str) -> None:
        self.step("comment")
        issue_id = self.pick(data)
        before = self.fingerprint()
        response = self.client.post(f"/api/issues/{issue_id}/comments", {"body": text}, format="json")
        if not 1 <= len(text.strip()) <= 10_000:
            self.expect_rejected(before, response, 400)
            return
        assert response.status_code == 201, response.content[:500]
        assert response.json()["body"] == text.strip()
        self.model[issue_id].events.append("commented")

    @precondition(lambda self: HAS_BULK and self.model)
    @rule(data=st.data(), status=statuses, fault=st.sampled_from(["none", "none", "stale", "unknown_id"]))
    def bulk_status(self, data: st.DataObject, status: str, fault: str) -> None:
        self.step("bulk_status")
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=5, unique=True))
        items: list[dict[str, Any]] = []
        for issue_id in ids:
            item: dict[str, Any] = {"id": issue_id, "status": status}
            if data.draw(st.booleans(), label="with version"):
                item["version"] = self.model[issue_id].version
            items.append(item)
        if fault == "stale":
            items[-1]["version"] = self.model[items[-1]["id"]].version + 1
        elif fault == "unknown_id":
            items.append({"id": max(self.model) + 1000, "status": status})
        before = self.fingerprint()
        response = self.client.post("/api/issues/bulk-status", items, format="json")
        if status not in STATUSES or fault == "unknown_id":
            self.expect_rejected(before, response, 400)
            return
        if fault == "stale":
            self.expect_rejected(before, response, 409)
            return
        assert response.status_code == 200, response.content[:500]
        changed = [issue_id for issue_id in ids if self.model[issue_id].status != status]
        assert response.json()["updated"] == len(changed)
        for issue_id in ids:
            self.apply(self.model[issue_id], {"status": status})

    @precondition(lambda self: HAS_IMPORT)
    @rule(
        rows=st.lists(
            st.tuples(titles, st.sampled_from(STATUSES), st.lists(label_names, max_size=3)), min_size=1, max_size=4
        ),
        separator=st.sampled_from([",", ";"]),
    )
    def import_csv(self, rows: list[tuple[str, str, list[str]]], separator: str) -> None:
        self.step("import_csv")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["Title", "status", "labels"])
        for title, status, names in rows:
            writer.writerow([title, status, separator.join(n for n in names if "," not in n and ";" not in n)])
        response = self.client.post(
            "/api/issues/import", data=out.getvalue().encode(), content_type="text/csv; charset=utf-8"
        )
        assert response.status_code == 200, response.content[:500]
        valid = [row for row in rows if valid_title(row[0])]
        result = response.json()
        assert (result["created"], result["failed"]) == (len(valid), len(rows) - len(valid)), result
        new_ids = list(Issue.objects.exclude(pk__in=list(self.model)).order_by("pk").values_list("pk", flat=True))
        assert len(new_ids) == len(valid)
        for issue_id, (title, status, names) in zip(new_ids, valid, strict=True):
            kept = [n for n in names if "," not in n and ";" not in n and n.strip()]
            self.model[issue_id] = ModelIssue(
                title=title.strip(),
                description="",
                status=status,
                priority="medium",
                assignee=None,
                labels=frozenset(n.strip().lower() for n in kept),
                created_status=status,
            )

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def database_matches_model(self) -> None:
        rows = {
            row["id"]: row
            for row in Issue.objects.values(
                "id", "title", "description", "status", "priority", "assignee_id", "version", "resolved_at"
            )
        }
        assert set(rows) == set(self.model), "issues in the database are not the model's"
        labels: dict[int, set[str]] = {pk: set() for pk in rows}
        for issue_id, name in Issue.labels.through.objects.values_list("issue_id", "label__name"):
            labels[issue_id].add(name.lower())
        timelines: dict[int, list[tuple[str, dict, datetime]]] = {pk: [] for pk in rows}
        for issue_id, type_, details, timestamp in IssueEvent.objects.order_by("timestamp", "id").values_list(
            "issue_id", "type", "details", "timestamp"
        ):
            timelines[issue_id].append((type_, details, timestamp))
        for issue_id, issue in self.model.items():
            row = rows[issue_id]
            actual = (row["title"], row["description"], row["status"], row["priority"], row["assignee_id"])
            assert actual == (issue.title, issue.description, issue.status, issue.priority, issue.assignee)
            assert labels[issue_id] == set(issue.labels)
            assert row["version"] == 1 + issue.accepted, "version = 1 + accepted changes"
            timeline = timelines[issue_id]
            assert [event for event, _, _ in timeline] == issue.events, "exactly the events of the accepted changes"
            assert row["resolved_at"] == expected_resolved_at(issue.created_status, timeline)


def expected_resolved_at(created_status: str, timeline: list[tuple[str, dict, datetime]]) -> datetime | None:
    """``resolved_at`` as the status history says: the time the issue last entered resolved/closed from an
    open state (or its creation, if it was created done and never reopened); None while it is open."""
    status = created_status
    resolved_at = timeline[0][2] if status in DONE_STATUSES else None
    for event, details, timestamp in timeline[1:]:
        if event != "status_changed":
            continue
        assert details["from"] == status, "status events chain from the created status"
        status = details["to"]
        if status not in DONE_STATUSES:
            resolved_at = None
        elif details["from"] not in DONE_STATUSES:
            resolved_at = timestamp
    return resolved_at


@pytest.mark.slow
@pytest.mark.django_db
def test_random_histories_keep_the_invariants() -> None:
    maintainer = UserFactory(username="stateful-maintainer", role="maintainer")
    other = UserFactory(username="stateful-member", role="member")
    IssueHistories.client = make_client(maintainer)
    IssueHistories.user_ids = (maintainer.pk, other.pk)
    steps_before = STATEFUL_STATS.steps
    run_state_machine_as_test(
        IssueHistories,
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=os.environ.get("FUZZ_RANDOM") != "1",
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert STATEFUL_STATS.steps > steps_before
    if HAS_BULK:
        assert STATEFUL_STATS.rules["bulk_status"] > 0
    if HAS_IMPORT:
        assert STATEFUL_STATS.rules["import_csv"] > 0
