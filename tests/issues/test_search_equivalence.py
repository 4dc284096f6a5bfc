"""One vocabulary (issue 14, acceptance 2): ``q=<qualifiers>`` and the equivalent list parameters answer the same
issues in the same order with the same count, over hypothesis-generated combinations of status, priority, project,
assignee (a username, an id, ``me``, ``none``), reporter, labels and creation dates."""

import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issues.models import Issue, Priority, Status
from tests.factories import LabelFactory, ProjectFactory, UserFactory, add_member, default_project, shared_user

DAY = datetime(2026, 1, 5, tzinfo=UTC)
STATUSES, PRIORITIES = Status.values, Priority.values
LABELS = ["bug", "ui", "urgent"]
EXAMPLES = 60


@pytest.fixture
def dataset(db, member):
    """48 issues in MAIN and WEB (the member's) and SEC (not), every status, priority, assignee and label set, one
    created every 7 hours from DAY on."""
    web, sec = ProjectFactory(key="WEB"), ProjectFactory(key="SEC")
    add_member(member, web, "member")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    projects = [default_project(), web, sec]
    labels = {project.pk: {name: LabelFactory(project=project, name=name) for name in LABELS} for project in projects}
    label_sets = [[], ["bug"], ["ui"], ["bug", "ui"], ["bug", "urgent"], ["bug", "ui", "urgent"]]
    assignees = [alice, bob, member, None]
    reporters = [alice, member, shared_user()]
    issues = Issue.objects.bulk_create(
        Issue(
            project=projects[i % 3],
            number=i + 1,
            title=f"Issue {i}",
            status=STATUSES[i % 4],
            priority=PRIORITIES[(i // 4) % 4],
            assignee=assignees[(i // 2) % 4],
            reporter=reporters[i % 3 if i % 7 else (i + 1) % 3],
            created_at=DAY + timedelta(hours=7 * i),
            updated_at=DAY + timedelta(hours=7 * i),
        )
        for i in range(48)
    )
    links = Issue.labels.through
    links.objects.bulk_create(
        links(issue_id=issue.pk, label_id=labels[issue.project_id][name].pk)
        for i, issue in enumerate(issues)
        for name in label_sets[i % len(label_sets)]
    )
    return SimpleNamespace(member=member, users={"alice": alice, "bob": bob, "member": member})


def subset(values: list[str]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


# Each dimension's values; a combination constrains one to four of them (more would mostly match nothing).
DIMENSIONS = {
    "status": subset(STATUSES),
    "priority": subset(PRIORITIES),
    "project": subset(["MAIN", "WEB"]),
    "assignee": st.sampled_from(["alice", "bob", "member", "none"]),
    "reporter": st.sampled_from(["alice", "member"]),
    "label": subset(LABELS),
    "created_after": st.integers(0, 15),  # days after DAY
    "created_before": st.integers(1, 16),
}


@st.composite
def combinations(draw: st.DrawFn) -> dict:
    names = draw(st.lists(st.sampled_from(list(DIMENSIONS)), min_size=1, max_size=4, unique=True))
    combo: dict = {name: draw(DIMENSIONS[name]) if name in names else None for name in DIMENSIONS}
    combo["name_users_by"] = draw(st.sampled_from(["username", "id", "me"]))  # how q names a user
    combo["with_time"] = draw(st.booleans())  # a date-time rather than a date
    combo["repeat"] = draw(st.booleans())  # repeated qualifiers and parameters rather than comma lists
    combo["ordering"] = draw(st.none() | st.sampled_from(["id", "-id", "priority", "-priority", "-updated_at"]))
    return combo


def as_query(combo: dict, users: dict) -> tuple[dict, dict]:
    """The combination as ``q`` (plus ``ordering``), and as the list's parameters."""
    terms: list[str] = []
    params: dict = {}
    for name in ("status", "priority", "project", "label"):
        values = combo[name]
        if values:
            # Labels: a comma list or repeated, all must match; the others: any of, either way.
            terms += [f"{name}:{value}" for value in values] if combo["repeat"] else [f"{name}:{','.join(values)}"]
            params[name] = values if combo["repeat"] else ",".join(values)
    for name in ("assignee", "reporter"):
        who = combo[name]
        if who is None:
            continue
        if who == "none":
            terms.append(f"{name}:none")
            params[name] = "none"
            continue
        user = users[who]
        by = combo["name_users_by"]
        terms.append(f"{name}:{'me' if by == 'me' and who == 'member' else user.pk if by == 'id' else who}")
        params[name] = user.pk
    for name, operator in (("created_after", ">="), ("created_before", "<")):
        if combo[name] is not None:
            moment = DAY + timedelta(days=combo[name], hours=5 if combo["with_time"] else 0)
            text = moment.strftime("%Y-%m-%dT%H:%M:%SZ") if combo["with_time"] else moment.date().isoformat()
            terms.append(f"created:{operator}{text}")
            params[name] = moment.isoformat()
    ordering = {"ordering": combo["ordering"]} if combo["ordering"] else {}
    return {"q": " ".join(terms), **ordering}, {**params, **ordering}


def test_qualifiers_answer_as_the_parameters_do(dataset, member_client):
    answered = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(combinations())
    def check(combo: dict) -> None:
        by_q, by_params = as_query(combo, dataset.users)
        answers = []
        for params in (by_q, by_params):
            response = member_client.get("/api/issues", {**params, "page_size": 100})
            assert response.status_code == 200, (params, response.content[:300])
            body = response.json()
            answers.append((body["count"], [row["id"] for row in body["results"]]))
        assert answers[0] == answers[1], (by_q, by_params)
        answered.append(answers[0][0])

    check()
    # Not a comparison of empty lists: many combinations match some issues, several match many.
    assert len(answered) == EXAMPLES
    assert sum(1 for count in answered if count > 0) >= EXAMPLES // 2, answered
    assert max(answered) >= 10, answered
