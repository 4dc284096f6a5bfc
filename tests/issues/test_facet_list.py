"""The list filtered by the everyday filters only (project, status, priority, assignee) is read without the
FilterSet (``issues.facet_params``) and its first pages by one prepared statement (``selectors.issue_facet_page``):
it must answer exactly what the FilterSet's path answers for the same parameters (same ids, same order, same
count, every page), refuse what that path refuses with the same 400, and cost the same few statements."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issues import filters
from issues.models import Priority, Status
from tests.helpers import make_client
from tests.issues.test_search_equivalence import dataset  # noqa: F401  # the fixture: 48 issues, 3 projects

EXAMPLES = 40
# ``ordering=-created_at`` is the default order (ties by -id, as the default): it only sends the list through the
# FilterSet, which is the reference.
THROUGH_FILTERSET = {"ordering": "-created_at"}


def subset(values: list[str]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


@st.composite
def parameters(draw: st.DrawFn) -> dict:
    dimensions = {
        "status": subset(Status.values).map(",".join),
        "priority": subset(Priority.values).map(",".join),
        "project": subset(["MAIN", "WEB"]).map(",".join),
        "assignee": st.sampled_from(["alice", "bob", "member", "none"]),
    }
    names = draw(st.lists(st.sampled_from(list(dimensions)), min_size=1, max_size=4, unique=True))
    return {name: draw(dimensions[name]) for name in names}


def pages(client, params: dict, page_size: int) -> list[tuple[int, list[int]]]:
    """Every page of the list (count and ids), then one past the end (its status)."""
    answers = []
    page = 1
    while True:
        response = client.get("/api/issues", {**params, "page": page, "page_size": page_size})
        if page > 1 and response.status_code == 404:
            return answers
        assert response.status_code == 200, (params, page, response.content[:300])
        body = response.json()
        answers.append((body["count"], [row["id"] for row in body["results"]]))
        page += 1


@pytest.mark.parametrize("who", ["member", "staff"])
def test_the_everyday_filters_answer_as_the_filterset_does(dataset, member_client, staff_client, who):  # noqa: F811
    client = member_client if who == "member" else staff_client
    counts = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(parameters(), st.sampled_from([3, 7, 100]))
    def check(params: dict, page_size: int) -> None:
        if "assignee" in params and params["assignee"] != "none":
            params = {**params, "assignee": dataset.users[params["assignee"]].pk}
        fast = pages(client, params, page_size)
        reference = pages(client, {**params, **THROUGH_FILTERSET}, page_size)
        assert fast == reference, params
        counts.append(fast[0][0])

    check()
    # Not a comparison of empty lists.
    assert sum(1 for count in counts if count > 0) >= EXAMPLES // 2, counts
    assert max(counts) >= 10, counts


def test_past_the_tenth_page_the_orm_reads_the_same_issues(dataset, staff_client):  # noqa: F811
    # page_size 1: pages 1..10 are prepared statements, 11 and after the ORM's; both the same list.
    fast = pages(staff_client, {"priority": "low,medium,high,critical"}, 1)
    reference = pages(staff_client, {"priority": "low,medium,high,critical", **THROUGH_FILTERSET}, 1)
    assert len(fast) == 48
    assert fast == reference


def test_the_filterset_is_not_built_and_three_statements_answer(dataset, member_client, monkeypatch):  # noqa: F811
    built = []
    original = filters.IssueFilterSet.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(filters.IssueFilterSet, "__init__", counting_init)
    member_client.get("/api/issues", {"status": "open"})  # warm: the compiled statements are per process
    with CaptureQueriesContext(connection) as ctx:
        response = member_client.get(
            "/api/issues", {"status": "open,closed", "assignee": "none", "page": 2, "page_size": 3}
        )
    assert response.status_code == 200
    assert len(ctx.captured_queries) == 1 + 2  # the token's user, the kept count, the page
    assert built == []
    member_client.get("/api/issues", {"status": "open", "label": "bug"})
    assert built == [1]  # a label is the FilterSet's


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "opened"}, "status"),
        ({"status": "open,closed,open,resolved,in_progress,x"}, "status"),
        ({"priority": "High"}, "priority"),
        ({"assignee": "alice"}, "assignee"),
        ({"assignee": "0"}, "assignee"),
        ({"assignee": "1\x00"}, "assignee"),
        ({"project": "NOPE", "status": "open"}, "project"),
        ({"project": "SEC", "status": "open"}, "project"),  # exists, but the member cannot see it
    ],
)
def test_refused_values_get_the_filtersets_400(dataset, member_client, params, field):  # noqa: F811
    fast = member_client.get("/api/issues", params)
    reference = member_client.get("/api/issues", {**params, **THROUGH_FILTERSET})
    assert fast.status_code == reference.status_code == 400
    assert fast.json() == reference.json()
    assert field in fast.json()


def test_a_page_past_the_end_is_a_404_as_before(dataset, member_client):  # noqa: F811
    count = member_client.get("/api/issues", {"status": "open"}).json()["count"]
    assert count > 0
    last = (count + 19) // 20
    assert member_client.get("/api/issues", {"status": "open", "page": last}).status_code == 200
    assert member_client.get("/api/issues", {"status": "open", "page": last + 1}).status_code == 404


def test_a_viewer_of_no_project_sees_the_internal_ones_alone(db, dataset):  # noqa: F811
    from tests.factories import UserFactory

    client = make_client(UserFactory(username="outsider", role="viewer"))
    fast = pages(client, {"status": "open"}, 2)
    assert fast == pages(client, {"status": "open", **THROUGH_FILTERSET}, 2)
    assert fast[0][0] == 4  # MAIN's (internal: every user sees it); WEB's and SEC's are not counted
