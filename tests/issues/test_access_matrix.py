"""The access matrix of the contract ("Projects and roles"), cell by cell: each role against each route that
reads or writes a project's issues, labels, members or settings, and who may use the API at all.

A role is the caller's standing in the route's target project: ``none_private`` (no role in the private ``SEC``),
``none_internal`` (no role in the internal ``PUB``: a viewer there), ``outsider`` (no role in ``SEC`` but the
maintainer of another project, so a route that needs some role somewhere lets them through to the project check),
``viewer``, ``member`` and ``maintainer`` of ``SEC``, ``staff`` (no membership at all) and ``anonymous``. Each cell
asserts the exact status; a caller who cannot see the target gets the very answer (status, content type, body, the
name they sent aside) that a nonexistent id, key or project gets; a write that is refused writes nothing; and no
answer to a caller who cannot see ``SEC`` holds anything of it (an issue, a count, a label name, a comment, an
assignee, its key). Webhooks (``/api/projects/{key}/webhooks``): their list and their creation, maintainers only.
"""

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hooks.models import Webhook
from issues.access import ROLE_ACTIONS, Action
from issues.models import Comment, Issue, IssueEvent, Label, Membership, Project, Role, Status, Visibility
from tests.factories import (
    CommentFactory,
    IssueEventFactory,
    IssueFactory,
    LabelFactory,
    ProjectFactory,
    UserFactory,
    default_project,
)
from tests.helpers import make_client

pytestmark = pytest.mark.django_db

MAIN, PUB, SEC, OTH = "MAIN", "PUB", "SEC", "OTH"
UNKNOWN_KEY = "NOPE"
MISSING_ID = 2_000_000_000  # no issue, label or user has it
SECRET = "secret"  # in every title, description, label name, comment and assignee name of SEC (any case)

ROLES = ("anonymous", "none_private", "none_internal", "outsider", "viewer", "member", "maintainer", "staff")
# The caller's role in the target project (None: they cannot see it).
ROLE_IN_TARGET: dict[str, str | None] = {
    "none_private": None,
    "outsider": None,
    "none_internal": Role.VIEWER,
    "viewer": Role.VIEWER,
    "member": Role.MEMBER,
    "maintainer": Role.MAINTAINER,
    "staff": Role.MAINTAINER,
}
# The best role the caller holds outside the target (internal projects make everyone a viewer).
ROLE_ELSEWHERE: dict[str, str] = {"none_private": Role.VIEWER, "outsider": Role.MAINTAINER}
# The projects each caller sees.
VISIBLE: dict[str, set[str]] = {
    "anonymous": set(),
    "none_private": {MAIN, PUB},
    "none_internal": {MAIN, PUB},
    "outsider": {MAIN, PUB, OTH},
    "viewer": {MAIN, PUB, SEC},
    "member": {MAIN, PUB, SEC},
    "maintainer": {MAIN, PUB, SEC},
    "staff": {MAIN, PUB, SEC, OTH},
}
# Who plays each role ("newcomer": the user the members API adds).
ROLE_USERS = {
    "none_private": "nobody",
    "none_internal": "nobody",
    "outsider": "outsider",
    "viewer": "secviewer",
    "member": "secmember",
    "maintainer": "secmaintainer",
    "staff": "staffer",
    "newcomer": "newcomer",
}
LABEL_NAMES = {MAIN: "mainlabel", PUB: "publabel", SEC: "secretlabel", OTH: "othlabel"}
COMMENTS = {PUB: "public comment", SEC: "secret comment"}
SEARCH_WORDS = {PUB: "public", SEC: SECRET}
User = get_user_model()


# --- the world every cell starts from ------------------------------------------------------------------------------


@dataclass
class World:
    """MAIN (internal, 1 issue), PUB (internal, 2 issues), SEC (private, 3 issues), OTH (private, 1 issue); each
    with one label on all its issues; PUB and SEC with a comment (and its timeline event) on their first issue, an
    assignee on every issue and one resolved issue."""

    users: dict[str, Any]
    projects: dict[str, Project]
    issues: dict[str, list[Issue]]
    labels: dict[str, Label]
    assignees: dict[str, Any]
    tokens: dict[int, str]

    def client(self, role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[self.users[role].pk]}")
        return client

    def key(self, role: str) -> str:
        """The target project of ``role``'s cells."""
        return PUB if role == "none_internal" else SEC

    def issue(self, role: str) -> Issue:
        return self.issues[self.key(role)][0]

    def label(self, role: str) -> Label:
        return self.labels[self.key(role)]

    def visible_ids(self, role: str, keys: set[str] | None = None) -> set[int]:
        keys = VISIBLE[role] if keys is None else keys
        return {issue.pk for key in keys for issue in self.issues[key]}


@pytest.fixture
def world(db) -> World:
    """Built from the factories' unsaved objects, written a table at a time: a dozen statements, not a hundred
    (the matrix runs this once per cell)."""
    projects = {
        MAIN: default_project(),
        **{
            project.key: project
            for project in Project.objects.bulk_create(
                [
                    ProjectFactory.build(key=PUB, visibility=Visibility.INTERNAL),
                    ProjectFactory.build(key=SEC, visibility=Visibility.PRIVATE),
                    ProjectFactory.build(key=OTH, visibility=Visibility.PRIVATE),
                ]
            )
        },
    }
    usernames = sorted({*ROLE_USERS.values(), "secretassignee", "pubassignee"})
    made = {
        user.username: user
        for user in User.objects.bulk_create(
            UserFactory.build(username=name, is_staff=name == ROLE_USERS["staff"]) for name in usernames
        )
    }
    made_tokens = Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in made.values())
    tokens = {token.user_id: token.key for token in made_tokens}
    roles = [
        ("outsider", OTH, Role.MAINTAINER),
        ("secviewer", SEC, Role.VIEWER),
        ("secmember", SEC, Role.MEMBER),
        ("secmaintainer", SEC, Role.MAINTAINER),
        ("secretassignee", SEC, Role.MEMBER),
        ("pubassignee", PUB, Role.MEMBER),
    ]
    Membership.objects.bulk_create(
        Membership(user=made[name], project=projects[key], role=role) for name, key, role in roles
    )
    users = {role: made[name] for role, name in ROLE_USERS.items()}
    assignees = {SEC: made["secretassignee"], PUB: made["pubassignee"]}
    labels = {
        label.project.key: label
        for label in Label.objects.bulk_create(
            LabelFactory.build(project=project, name=LABEL_NAMES[key]) for key, project in projects.items()
        )
    }

    now = timezone.now()
    opened = now - timedelta(hours=1)
    titles = {MAIN: ["Main issue"], PUB: ["PUBLIC-TITLE-1", "PUBLIC-TITLE-2"], OTH: ["Other issue"]}
    titles[SEC] = ["SECRET-TITLE-1", "SECRET-TITLE-2", "SECRET-TITLE-3"]
    rows = []
    for key, project in projects.items():
        for n, title in enumerate(titles[key]):
            done = key in assignees and n == 1  # PUB and SEC: one resolved issue each
            rows.append(
                IssueFactory.build(
                    project=project,
                    number=None,  # given by the insert trigger, read back below
                    title=title,
                    description="SECRET-DESCRIPTION" if key == SEC else "Steps to reproduce",
                    assignee=assignees.get(key),
                    reporter=assignees.get(key, made["staffer"]),
                    status=Status.RESOLVED if done else Status.OPEN,
                    created_at=opened,
                    updated_at=opened,
                    resolved_at=now if done else None,
                )
            )
    created = Issue.objects.bulk_create(rows)
    numbers = dict(Issue.objects.filter(pk__in=[issue.pk for issue in created]).values_list("pk", "number"))
    issues: dict[str, list[Issue]] = {key: [] for key in projects}
    for issue in created:
        issue.number = numbers[issue.pk]
        issues[issue.project.key].append(issue)
    Issue.labels.through.objects.bulk_create(
        Issue.labels.through(issue_id=issue.pk, label_id=labels[key].pk) for key in issues for issue in issues[key]
    )
    comments = Comment.objects.bulk_create(
        CommentFactory.build(issue=issues[key][0], author=assignees[key], body=body) for key, body in COMMENTS.items()
    )
    IssueEvent.objects.bulk_create(
        IssueEventFactory.build(
            issue=comment.issue,
            type="commented",
            actor=comment.author,
            details={"comment_id": comment.pk, "excerpt": comment.body},
        )
        for comment in comments
    )
    return World(users=users, projects=projects, issues=issues, labels=labels, assignees=assignees, tokens=tokens)


def snapshot() -> list[Any]:
    """Every row a route of the matrix could write, in one statement."""
    tables = [
        (Issue, "id, version, title, status"),
        (Issue.labels.through, "issue_id, label_id"),
        (Label, "id, name"),
        (Comment, "id, body"),
        (IssueEvent, "id"),
        (Membership, "user_id, project_id, role"),
        (Project, "id, name, description, visibility"),
        (Webhook, "id, url"),
    ]
    parts = [
        f"(SELECT json_agg(json_build_array({columns}) ORDER BY {columns}) FROM {model._meta.db_table})"
        for model, columns in tables
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}")
        return list(cursor.fetchone())


# --- requests and answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request; ``names`` are the strings in it that name its subject (replaced before two answers are
    compared); ``csv``: a raw text/csv body."""

    method: str
    path: str
    body: Any = None
    csv: str | None = None
    names: tuple[str, ...] = ()


def send(client: APIClient, call: Call) -> Any:
    if call.csv is not None:
        return client.generic(call.method, call.path, call.csv.encode(), content_type="text/csv")
    method = getattr(client, call.method.lower())
    return method(call.path) if call.body is None else method(call.path, call.body, format="json")


def text(response: Any) -> str:
    """The body as text (a streamed one read once and kept)."""
    if not hasattr(response, "_matrix_text"):
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        response._matrix_text = raw.decode("utf-8")
    return response._matrix_text


def json_of(response: Any) -> Any:
    return json.loads(text(response))


def results(response: Any) -> list[dict[str, Any]]:
    """The items of a list answer, paginated or not."""
    body = json_of(response)
    return body["results"] if isinstance(body, dict) else body


def normalized(response: Any, call: Call) -> tuple[int, str, str]:
    """Status, content type and body, with the names ``call`` sent replaced by one placeholder."""
    body = text(response)
    for name in sorted(call.names, key=len, reverse=True):
        body = re.sub(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", "<subject>", body)
    return response.status_code, response.get("Content-Type", ""), body


def show(response: Any) -> str:
    return f"{response.status_code} {text(response)[:400]}"


# --- routes -------------------------------------------------------------------------------------------------------

Check = Callable[[World, str, Any], None]


@dataclass(frozen=True)
class Route:
    """One column. ``call``: the request about ``role``'s target; ``need``: the action the target's role must allow,
    then ``ok`` is the answer (else 403); ``hidden``: the answer when the caller cannot see the target, which must
    also be exactly the answer to each of ``missing`` (the same request naming nothing); ``gate``: a route about a
    project named in the body, refused as a whole (403) to a caller who may do ``gate`` in no project at all, an
    answer an unknown project gets too; ``check``: what a 2xx answer holds or did."""

    call: Callable[[World, str], Call]
    need: Action
    ok: int
    hidden: int
    missing: Callable[[World, str], list[Call]] | None = None
    gate: Action | None = None
    check: Check | None = None


def expected_status(route: Route, role: str) -> int:
    if role == "anonymous":
        return 401
    role_in_target = ROLE_IN_TARGET[role]
    if role_in_target is None:
        if route.gate is not None and route.gate not in ROLE_ACTIONS[ROLE_ELSEWHERE[role]]:
            return 403
        return route.hidden
    return route.ok if route.need in ROLE_ACTIONS[role_in_target] else 403


# Checks of what a successful answer holds (reads) or did (writes).


def check_ids(keys_of: Callable[[World, str], set[str] | None]) -> Check:
    """A list of issues: exactly those of ``keys_of`` (None: every project the caller sees), and its exact count."""

    def check(w: World, role: str, response: Any) -> None:
        body = json_of(response)
        expected = w.visible_ids(role, keys_of(w, role))
        assert {item["id"] for item in body["results"]} == expected
        assert body["count"] == len(expected)

    return check


def check_export(keys_of: Callable[[World, str], set[str] | None]) -> Check:
    def check(w: World, role: str, response: Any) -> None:
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text(response), newline="")))
        assert {int(row["id"]) for row in rows} == w.visible_ids(role, keys_of(w, role))

    return check


def check_detail(w: World, role: str, response: Any) -> None:
    issue, body = w.issue(role), json_of(response)
    assert (body["id"], body["key"], body["title"], body["project"]) == (issue.pk, issue.key, issue.title, w.key(role))
    assert [comment["body"] for comment in body["comments"]] == [COMMENTS[w.key(role)]]


def check_patched(w: World, role: str, response: Any) -> None:
    issue = Issue.objects.get(pk=w.issue(role).pk)
    assert (issue.title, issue.version) == ("changed by the matrix", 2)
    assert json_of(response)["version"] == 2


def check_relabelled(w: World, role: str, response: Any) -> None:
    issue = Issue.objects.get(pk=w.issue(role).pk)
    assert [(label.name, label.project_id) for label in issue.labels.all()] == [("fresh", issue.project_id)]
    assert json_of(response)["labels"] == ["fresh"]


def check_comments(w: World, role: str, response: Any) -> None:
    assert [item["body"] for item in results(response)] == [COMMENTS[w.key(role)]]


def check_commented(w: World, role: str, response: Any) -> None:
    assert json_of(response)["body"] == "a matrix comment"
    assert Comment.objects.filter(issue_id=w.issue(role).pk, body="a matrix comment").count() == 1


def check_timeline(w: World, role: str, response: Any) -> None:
    assert [(item["type"], item["details"]["excerpt"]) for item in results(response)] == [
        ("commented", COMMENTS[w.key(role)])
    ]


def check_created(w: World, role: str, response: Any) -> None:
    body = json_of(response)
    assert (body["project"], body["key"]) == (w.key(role), f"{w.key(role)}-{len(w.issues[w.key(role)]) + 1}")
    assert Issue.objects.get(pk=body["id"]).project_id == w.projects[w.key(role)].pk


def check_bulk(w: World, role: str, response: Any) -> None:
    assert json_of(response) == {
        "updated": 1,
        "unchanged": 0,
        "results": [{"id": w.issue(role).pk, "status": "closed", "version": 2}],
    }
    assert Issue.objects.get(pk=w.issue(role).pk).status == Status.CLOSED


def check_imported(w: World, role: str, response: Any) -> None:
    assert (json_of(response)["created"], json_of(response)["failed"]) == (1, 0)
    assert Issue.objects.get(title="Imported by the matrix").project_id == w.projects[w.key(role)].pk


def top_assignees(w: World, keys: set[str]) -> list[dict[str, Any]]:
    rows = [
        {"assignee": w.assignees[key].pk, "username": w.assignees[key].username, "issue_count": len(w.issues[key])}
        for key in keys
        if key in w.assignees
    ]
    return sorted(rows, key=lambda row: (-row["issue_count"], row["username"]))


def check_top_assignees(w: World, role: str, response: Any) -> None:
    assert json_of(response) == top_assignees(w, VISIBLE[role])


def check_top_assignees_of_target(w: World, role: str, response: Any) -> None:
    assert json_of(response) == top_assignees(w, {w.key(role)})


def resolved_count(keys: set[str]) -> int:
    return sum(1 for key in keys if key in COMMENTS)  # PUB and SEC have one resolved issue each


def check_latency(w: World, role: str, response: Any) -> None:
    assert json_of(response)["resolved_count"] == resolved_count(VISIBLE[role])


def check_throughput(w: World, role: str, response: Any) -> None:
    periods = json_of(response)
    assert sum(period["created"] for period in periods) == len(w.visible_ids(role))
    assert sum(period["resolved"] for period in periods) == resolved_count(VISIBLE[role])


def check_labels(keys_of: Callable[[World, str], set[str]]) -> Check:
    def check(w: World, role: str, response: Any) -> None:
        got = {(item["project"], item["name"], item["issue_count"]) for item in results(response)}
        assert got == {(key, LABEL_NAMES[key], len(w.issues[key])) for key in keys_of(w, role)}

    return check


def check_label(w: World, role: str, response: Any) -> None:
    body = json_of(response)
    assert (body["id"], body["project"], body["name"]) == (w.label(role).pk, w.key(role), LABEL_NAMES[w.key(role)])


def check_label_created(w: World, role: str, response: Any) -> None:
    assert (json_of(response)["project"], json_of(response)["name"]) == (w.key(role), "fresh")
    assert Label.objects.filter(project=w.projects[w.key(role)], name="fresh").count() == 1


def check_label_renamed(w: World, role: str, response: Any) -> None:
    assert json_of(response)["name"] == "renamed"
    assert Label.objects.get(pk=w.label(role).pk).name == "renamed"


def check_label_deleted(w: World, role: str, response: Any) -> None:
    assert not Label.objects.filter(pk=w.label(role).pk).exists()


def check_projects(w: World, role: str, response: Any) -> None:
    assert sorted(item["key"] for item in results(response)) == sorted(VISIBLE[role])


def check_project(w: World, role: str, response: Any) -> None:
    body = json_of(response)
    assert (body["key"], body["my_role"]) == (w.key(role), ROLE_IN_TARGET[role])


def check_settings(w: World, role: str, response: Any) -> None:
    assert json_of(response)["description"] == "changed by the matrix"
    assert Project.objects.get(key=w.key(role)).description == "changed by the matrix"


WEBHOOK_URL = "http://127.0.0.1:9/matrix-hook"  # never called: the tests' transactions do not commit


@pytest.fixture(autouse=True)
def private_webhook_targets(settings: Any) -> None:
    """The matrix's webhook URL is on loopback (no name to resolve in a sandbox): allowed here, as in development."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def check_webhooks(w: World, role: str, response: Any) -> None:
    expected = set(Webhook.objects.filter(project__key=w.key(role)).values_list("id", flat=True))
    assert {item["id"] for item in results(response)} == expected


def check_webhook_created(w: World, role: str, response: Any) -> None:
    body = json_of(response)
    assert body["url"] == WEBHOOK_URL and body["secret"].startswith("whsec_")
    assert Webhook.objects.get(pk=body["id"]).project.key == w.key(role)


def members_of(w: World, key: str) -> set[str]:
    return set(Membership.objects.filter(project__key=key).values_list("user__username", flat=True))


def check_members(w: World, role: str, response: Any) -> None:
    assert {item["user"]["username"] for item in results(response)} == members_of(w, w.key(role))


def check_member_added(w: World, role: str, response: Any) -> None:
    assert json_of(response) == {
        "user": {"id": w.users["newcomer"].pk, "username": "newcomer"},
        "role": Role.VIEWER,
    }
    assert "newcomer" in members_of(w, w.key(role))


def check_member_removed(w: World, role: str, response: Any) -> None:
    assert w.assignees[w.key(role)].username not in members_of(w, w.key(role))


# Route builders.


def by_project_key(method: str, path: str, body: Any = None) -> tuple[Callable, Callable]:
    """A request naming the target project by key (``{key}`` in ``path`` or ``body``), and the same naming none."""

    def fill(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return value.replace("{key}", key)
        if isinstance(value, dict):
            return {name: fill(item, key) for name, item in value.items()}
        return value

    def call(w: World, role: str) -> Call:
        key = w.key(role)
        return Call(method, fill(path, key), fill(body, key), names=(key,))

    def missing(w: World, role: str) -> list[Call]:
        return [Call(method, fill(path, UNKNOWN_KEY), fill(body, UNKNOWN_KEY), names=(UNKNOWN_KEY,))]

    return call, missing


def by_issue(by: str, method: str, suffix: str, body: Any = None) -> tuple[Callable, Callable]:
    """A request about the target's first issue, by id or by key; the same about an id that names no issue, or a
    key of an unknown project and of a number the target project never gave."""

    def call(w: World, role: str) -> Call:
        issue = w.issue(role)
        ref = str(issue.pk) if by == "id" else issue.key
        return Call(method, f"/api/issues/{ref}{suffix}", body, names=(ref,))

    def missing(w: World, role: str) -> list[Call]:
        refs = [str(MISSING_ID)] if by == "id" else [f"{UNKNOWN_KEY}-1", f"{w.key(role)}-999"]
        return [Call(method, f"/api/issues/{ref}{suffix}", body, names=(ref,)) for ref in refs]

    return call, missing


def by_label(method: str, body: Any = None) -> tuple[Callable, Callable]:
    def call(w: World, role: str) -> Call:
        return Call(method, f"/api/labels/{w.label(role).pk}", body, names=(str(w.label(role).pk),))

    def missing(w: World, role: str) -> list[Call]:
        return [Call(method, f"/api/labels/{MISSING_ID}", body, names=(str(MISSING_ID),))]

    return call, missing


def bulk(by: str) -> tuple[Callable, Callable]:
    def item(ref: Any) -> list[dict[str, Any]]:
        return [{"id": ref, "status": "closed"}]

    def call(w: World, role: str) -> Call:
        issue = w.issue(role)
        ref = issue.pk if by == "id" else issue.key
        return Call("POST", "/api/issues/bulk-status", item(ref), names=(str(ref),))

    def missing(w: World, role: str) -> list[Call]:
        refs: list[Any] = [MISSING_ID] if by == "id" else [f"{UNKNOWN_KEY}-1", f"{w.key(role)}-999"]
        return [Call("POST", "/api/issues/bulk-status", item(ref), names=(str(ref),)) for ref in refs]

    return call, missing


def by_filter(param: str, value_of: Callable[[World, str], str], absent: str) -> tuple[Callable, Callable]:
    """A list read filtered by a value of the target (a project key, a label name, a search word); the same with a
    value nothing has."""

    def call(w: World, role: str) -> Call:
        return Call("GET", f"/api/issues?{param}={value_of(w, role)}", names=(value_of(w, role),))

    def missing(w: World, role: str) -> list[Call]:
        return [Call("GET", f"/api/issues?{param}={absent}", names=(absent,))]

    return call, missing


def collection(method: str, path: str) -> Callable[[World, str], Call]:
    return lambda w, role: Call(method, path)


def route(pair: tuple[Callable, Callable], **kwargs: Any) -> Route:
    call, missing = pair
    return Route(call=call, missing=missing, **kwargs)


def target_only(w: World, role: str) -> set[str]:
    """The target project, when the caller can see it (else nothing)."""
    return {w.key(role)} & VISIBLE[role]


def everything_visible(w: World, role: str) -> None:
    return None


def visible_labels(w: World, role: str) -> set[str]:
    return VISIBLE[role]


IMPORT_CSV = "title\nImported by the matrix\n"
NEW_ISSUE = {"project": "{key}", "title": "Created by the matrix"}

ROUTES: dict[str, Route] = {
    # The issue list and its filters: over the projects the caller sees; a project named in a filter that the
    # caller cannot see is an unknown one (400 naming `project`).
    "list": Route(collection("GET", "/api/issues"), Action.READ, 200, 200, check=check_ids(everything_visible)),
    "list_project": route(
        by_project_key("GET", "/api/issues?project={key}"),
        need=Action.READ,
        ok=200,
        hidden=400,
        check=check_ids(target_only),
    ),
    "search": route(
        by_filter("q", lambda w, role: SEARCH_WORDS[w.key(role)], "zzzunmatched"),
        need=Action.READ,
        ok=200,
        hidden=200,
        check=check_ids(target_only),
    ),
    "label_filter": route(
        by_filter("label", lambda w, role: LABEL_NAMES[w.key(role)], "nosuchlabel"),
        need=Action.READ,
        ok=200,
        hidden=200,
        check=check_ids(target_only),
    ),
    # The project is named in the body: an invisible one is answered as an unknown one (400 on `project`); a caller
    # who may create issues in no project at all is refused by the route (403), whatever the body names.
    "create": route(
        by_project_key("POST", "/api/issues", NEW_ISSUE),
        need=Action.WRITE,
        ok=201,
        hidden=400,
        gate=Action.WRITE,
        check=check_created,
    ),
    "export": Route(
        collection("GET", "/api/issues/export"), Action.READ, 200, 200, check=check_export(everything_visible)
    ),
    "export_project": route(
        by_project_key("GET", "/api/issues/export?project={key}"),
        need=Action.READ,
        ok=200,
        hidden=400,
        check=check_export(target_only),
    ),
    # Bulk names issues in the body: one the caller cannot see is the item error of an unknown id (400); a caller
    # who maintains no project at all is refused by the route (403: "bulk status: viewer 403, member 403").
    "bulk_id": route(bulk("id"), need=Action.MANAGE, ok=200, hidden=400, gate=Action.MANAGE, check=check_bulk),
    "bulk_key": route(bulk("key"), need=Action.MANAGE, ok=200, hidden=400, gate=Action.MANAGE, check=check_bulk),
    # The import names its project in the query, as a path would (GitHub: /repos/o/secret/... is a 404 to one who
    # cannot see it): an invisible one is the 404 of an unknown one, also to a caller who maintains no project.
    "import": route(
        (
            lambda w, role: Call(
                "POST", f"/api/issues/import?project={w.key(role)}", csv=IMPORT_CSV, names=(w.key(role),)
            ),
            lambda w, role: [
                Call("POST", f"/api/issues/import?project={UNKNOWN_KEY}", csv=IMPORT_CSV, names=(UNKNOWN_KEY,))
            ],
        ),
        need=Action.MANAGE,
        ok=200,
        hidden=404,
        check=check_imported,
    ),
    "reports_top_assignees": Route(
        collection("GET", "/api/reports/top-assignees"), Action.READ, 200, 200, check=check_top_assignees
    ),
    "reports_latency": Route(collection("GET", "/api/reports/latency"), Action.READ, 200, 200, check=check_latency),
    "reports_throughput": Route(
        collection("GET", "/api/reports/throughput"), Action.READ, 200, 200, check=check_throughput
    ),
    "reports_project": route(
        by_project_key("GET", "/api/reports/top-assignees?project={key}"),
        need=Action.READ,
        ok=200,
        hidden=400,
        check=check_top_assignees_of_target,
    ),
    # The labels API: a label's path names its project (404 when invisible); `project` in a query or a body is
    # answered as an unknown key (400), and refused by the route (403) to a caller who maintains no project.
    "labels_list": Route(collection("GET", "/api/labels"), Action.READ, 200, 200, check=check_labels(visible_labels)),
    "labels_list_project": route(
        by_project_key("GET", "/api/labels?project={key}"),
        need=Action.READ,
        ok=200,
        hidden=400,
        check=check_labels(target_only),
    ),
    "label_detail": route(by_label("GET"), need=Action.READ, ok=200, hidden=404, check=check_label),
    "label_create": route(
        by_project_key("POST", "/api/labels", {"project": "{key}", "name": "fresh"}),
        need=Action.MANAGE,
        ok=201,
        hidden=400,
        gate=Action.MANAGE,
        check=check_label_created,
    ),
    "label_rename": route(
        by_label("PATCH", {"name": "renamed"}), need=Action.MANAGE, ok=200, hidden=404, check=check_label_renamed
    ),
    "label_delete": route(by_label("DELETE"), need=Action.MANAGE, ok=204, hidden=404, check=check_label_deleted),
    # Projects, their settings and members.
    "projects_list": Route(collection("GET", "/api/projects"), Action.READ, 200, 200, check=check_projects),
    "project_detail": route(
        by_project_key("GET", "/api/projects/{key}"), need=Action.READ, ok=200, hidden=404, check=check_project
    ),
    "project_settings": route(
        by_project_key("PATCH", "/api/projects/{key}", {"description": "changed by the matrix"}),
        need=Action.MANAGE,
        ok=200,
        hidden=404,
        check=check_settings,
    ),
    "members_list": route(
        by_project_key("GET", "/api/projects/{key}/members"),
        need=Action.READ,
        ok=200,
        hidden=404,
        check=check_members,
    ),
    "member_put": Route(
        call=lambda w, role: Call(
            "PUT",
            f"/api/projects/{w.key(role)}/members/{w.users['newcomer'].pk}",
            {"role": "viewer"},
            names=(w.key(role),),
        ),
        missing=lambda w, role: [
            Call(
                "PUT",
                f"/api/projects/{UNKNOWN_KEY}/members/{w.users['newcomer'].pk}",
                {"role": "viewer"},
                names=(UNKNOWN_KEY,),
            )
        ],
        need=Action.MANAGE,
        ok=201,
        hidden=404,
        check=check_member_added,
    ),
    "member_delete": Route(
        call=lambda w, role: Call(
            "DELETE", f"/api/projects/{w.key(role)}/members/{w.assignees[w.key(role)].pk}", names=(w.key(role),)
        ),
        missing=lambda w, role: [
            Call("DELETE", f"/api/projects/{UNKNOWN_KEY}/members/{w.assignees[w.key(role)].pk}", names=(UNKNOWN_KEY,))
        ],
        need=Action.MANAGE,
        ok=204,
        hidden=404,
        check=check_member_removed,
    ),
    # Webhooks: a project's maintainers (and staff) only; for anyone else who sees the project a 403, else a 404.
    "webhooks_list": route(
        by_project_key("GET", "/api/projects/{key}/webhooks"),
        need=Action.MANAGE,
        ok=200,
        hidden=404,
        check=check_webhooks,
    ),
    "webhook_create": route(
        by_project_key("POST", "/api/projects/{key}/webhooks", {"url": WEBHOOK_URL, "events": ["*"]}),
        need=Action.MANAGE,
        ok=201,
        hidden=404,
        check=check_webhook_created,
    ),
}
# Every route about one issue, by id and by key: a project the caller cannot see makes them all 404, never 403, also
# the writes of a caller who may write in no project (the path names the issue: "invisible means 404").
for _by in ("id", "key"):
    ROUTES.update(
        {
            f"detail_{_by}": route(by_issue(_by, "GET", ""), need=Action.READ, ok=200, hidden=404, check=check_detail),
            f"patch_{_by}": route(
                by_issue(_by, "PATCH", "", {"title": "changed by the matrix", "version": 1}),
                need=Action.WRITE,
                ok=200,
                hidden=404,
                check=check_patched,
            ),
            f"labels_{_by}": route(
                by_issue(_by, "PUT", "/labels", ["fresh"]),
                need=Action.WRITE,
                ok=200,
                hidden=404,
                check=check_relabelled,
            ),
            f"comments_{_by}": route(
                by_issue(_by, "GET", "/comments"), need=Action.READ, ok=200, hidden=404, check=check_comments
            ),
            f"comment_{_by}": route(
                by_issue(_by, "POST", "/comments", {"body": "a matrix comment"}),
                need=Action.WRITE,
                ok=201,
                hidden=404,
                check=check_commented,
            ),
            f"timeline_{_by}": route(
                by_issue(_by, "GET", "/timeline"), need=Action.READ, ok=200, hidden=404, check=check_timeline
            ),
        }
    )

CELLS = [pytest.param(role, name, id=f"{role}-{name}") for name in ROUTES for role in ROLES]


@pytest.mark.parametrize(("role", "name"), CELLS)
def test_cell(world: World, role: str, name: str) -> None:
    route_ = ROUTES[name]
    call = route_.call(world, role)
    client = world.client(role)
    before = snapshot() if call.method != "GET" else None

    response = send(client, call)

    status = expected_status(route_, role)
    assert response.status_code == status, show(response)
    if role == "anonymous":
        assert response["WWW-Authenticate"] == "Token"
        assert json_of(response)["code"] == "not_authenticated"
    elif ROLE_IN_TARGET[role] is None and route_.missing is not None:
        # Not a byte of difference from a request about nothing (the names the caller sent aside).
        for other in route_.missing(world, role):
            assert normalized(send(client, other), other) == normalized(response, call), other.path
    if before is not None and status >= 300:  # a refused write wrote nothing (nor did the same about nothing)
        assert snapshot() == before
    if SEC not in VISIBLE[role]:
        body = text(response)
        assert SECRET not in body.lower(), body[:400]
        if SEC not in call.path + str(call.body):  # an echo of what the caller sent is no leak
            assert re.search(rf"(?<![A-Za-z]){SEC}(?![a-z])", body) is None, body[:400]
    if 200 <= status < 300 and route_.check is not None:
        route_.check(world, role, response)


# --- who may use the API at all ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/users", "/api/users/1", "/api/projects", "/api/projects/MAIN/members"])
def test_anonymous_is_401_beyond_the_matrix(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("path", ["/api/", "/api", "/api/health", "/api/schema", "/api/docs"])
def test_public_endpoints(anon_client, path):
    assert anon_client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/api/", "/api/health"])
def test_head_on_public_routes(anon_client, path):
    assert anon_client.head(path).status_code == 200


def test_token_endpoint(anon_client):
    user = UserFactory(username="carol", password="a-long-password-1")
    response = anon_client.post(
        "/api/auth/token", {"username": "carol", "password": "a-long-password-1"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}
    bad = anon_client.post("/api/auth/token", {"username": "carol", "password": "wrong"}, format="json")
    assert bad.status_code == 400
    assert "token" not in bad.json()


def test_bearer_keyword_and_bad_tokens(member):
    token = Token.objects.create(user=member)
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert bearer.get("/api/issues").status_code == 200
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert wrong.get("/api/issues").status_code == 401
    nul = APIClient()
    nul.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    assert nul.get("/api/issues").status_code == 401


def test_token_of_inactive_user_is_401(member):
    client = make_client(member)
    member.is_active = False
    member.save()
    assert client.get("/api/issues").status_code == 401


def test_session_login_works_for_browsable_api(client, member):
    client.force_login(member)
    response = client.get("/api/issues", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content


def test_roles_come_from_memberships_not_from_django_permissions(viewer):
    """A Django model permission (the admin's) gives no right in the API: only a membership does."""
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["add_issue", "add_label"]))
    client = make_client(viewer)
    assert client.post("/api/issues", {"title": "x"}, format="json").status_code == 403
    assert client.post("/api/labels", {"name": "x"}, format="json").status_code == 403
    assert not Issue.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "member", "maintainer"])
def test_non_staff_are_kept_out_of_the_admin(client, role, request):
    client.force_login(request.getfixturevalue(role))
    assert client.get("/admin/issues/issue/").status_code == 302  # sent to the admin login


def test_staff_reach_the_admin(client, staff):
    client.force_login(staff)
    assert client.get("/admin/issues/issue/").status_code == 200
