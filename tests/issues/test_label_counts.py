"""A list filtered by labels alone (projects aside) is counted by the label links of the projects searched
(``search_index.labels_counted``), not by ``COUNT(*)`` over the issues: the count must be the number of the caller's
issues carrying every label asked (names ignoring case), for one name or several, an unknown one, a project filter,
``q``'s ``label:`` as ``?label=``, and for staff; and any other filter beside the labels counts the issues again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues.models import Issue
from tests.helpers import make_client
from tests.issues.test_search_equivalence import dataset  # noqa: F401  # the fixture: 48 issues, 3 projects

CASES = [
    {"label": "bug"},
    {"label": "BUG"},
    {"label": "bug,ui"},
    {"label": ["bug", "Urgent"]},
    {"label": "bug,ui,urgent"},
    {"label": "nope"},
    {"label": "bug,nope"},
    {"label": "ui", "project": "WEB"},
    {"label": "bug", "project": "MAIN,WEB"},
    {"q": "label:bug label:ui"},
    {"q": "label:urgent", "label": "bug"},
]


def expected(user, params: dict) -> int:
    """The caller's issues carrying every label asked, counted in Python from the rows."""
    raw = params.get("label", [])
    names = {n.strip().lower() for part in ([raw] if isinstance(raw, str) else raw) for n in part.split(",")}
    names |= {term.removeprefix("label:").lower() for term in params.get("q", "").split() if term.startswith("label:")}
    names.discard("")
    keys = set(params["project"].split(",")) if "project" in params else None
    count = 0
    for issue in Issue.objects.select_related("project").prefetch_related("labels"):
        visible = user.is_staff or issue.project.key in {"MAIN", "WEB"}  # the member's (MAIN is internal)
        if visible and (keys is None or issue.project.key in keys):
            count += names <= {label.name.lower() for label in issue.labels.all()}
    return count


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("who", ["member", "staff"])
def test_the_count_is_the_callers_issues_carrying_every_label(dataset, member_client, staff, who, params):  # noqa: F811
    client, user = (member_client, dataset.member) if who == "member" else (make_client(staff), staff)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/issues", {**params, "page_size": 100})
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["count"] == len(body["results"]) == expected(user, params)
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(")]
    assert len(counts) == 1 and '"issues_issue_labels"' in counts[0], counts
    assert 'FROM "issues_issue" ' not in counts[0]  # the issues are not read to count them


def test_with_another_filter_the_issues_are_counted(dataset, member_client):  # noqa: F811
    with CaptureQueriesContext(connection) as ctx:
        body = member_client.get("/api/issues", {"label": "bug", "status": "open", "page_size": 100}).json()
    assert body["count"] == len(body["results"]) > 0
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(")]
    assert len(counts) == 1 and 'FROM "issues_issue" ' in counts[0], counts
