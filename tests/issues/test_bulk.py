"""POST/PUT /api/issues/bulk-status: all or nothing, per-item errors, 409 for stale versions, constant queries,
and no deadlock or lost update under real concurrency."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.models import EventType, Issue, IssueEvent, Source, Status, Visibility
from tests.factories import ProjectFactory, UserFactory, add_member, make_issues
from tests.helpers import db_state, make_client, run_together

URL = "/api/issues/bulk-status"


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize("shape", ["items", "ids"])
def test_bulk_changes_status_bumps_version_and_records_one_event_each(maintainer_client, maintainer, method, shape):
    ids = make_issues(3)
    Issue.objects.filter(pk=ids[2]).update(status=Status.CLOSED, resolved_at=timezone.now())
    body = [{"id": pk, "status": "closed"} for pk in ids] if shape == "items" else {"ids": ids, "status": "closed"}

    response = getattr(maintainer_client, method)(URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "updated": 2,
        "unchanged": 1,
        "results": [
            {"id": ids[0], "status": "closed", "version": 2},
            {"id": ids[1], "status": "closed", "version": 2},
            {"id": ids[2], "status": "closed", "version": 1},
        ],
    }
    rows = {issue.pk: issue for issue in Issue.objects.filter(pk__in=ids)}
    assert [rows[pk].version for pk in ids] == [2, 2, 1]
    assert all(rows[pk].status == Status.CLOSED for pk in ids)
    assert rows[ids[0]].resolved_at is not None
    events = list(IssueEvent.objects.order_by("issue_id").values("issue_id", "type", "source", "actor_id", "details"))
    assert events == [
        {
            "issue_id": pk,
            "type": EventType.STATUS_CHANGED,
            "source": Source.BULK,
            "actor_id": maintainer.pk,
            "details": {"from": "open", "to": "closed"},
        }
        for pk in ids[:2]
    ]


def test_bulk_item_already_at_target_is_unchanged_without_event(maintainer_client):
    ids = make_issues(2, status=Status.IN_PROGRESS)
    before = db_state()

    response = maintainer_client.post(URL, {"ids": ids, "status": "in_progress"}, format="json")

    assert response.status_code == 200
    assert response.json()["updated"] == 0
    assert response.json()["unchanged"] == 2
    assert db_state() == before


def test_bulk_resolved_at_follows_the_status_rules(maintainer_client):
    earlier = timezone.now() - timedelta(days=3)
    opened, resolved, closed = make_issues(3)
    Issue.objects.filter(pk=resolved).update(status=Status.RESOLVED, resolved_at=earlier)
    Issue.objects.filter(pk=closed).update(status=Status.CLOSED, resolved_at=earlier)
    body = [
        {"id": opened, "status": "resolved"},
        {"id": resolved, "status": "closed"},
        {"id": closed, "status": "open"},
    ]
    start = timezone.now()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    rows = {issue.pk: issue for issue in Issue.objects.all()}
    assert rows[opened].resolved_at >= start  # entered a done status: now
    assert rows[resolved].resolved_at == earlier  # resolved → closed keeps it
    assert rows[closed].resolved_at is None  # reopened: cleared
    assert rows[opened].updated_at >= start
    assert [rows[pk].status for pk in (opened, resolved, closed)] == ["resolved", "closed", "open"]


@pytest.mark.parametrize(
    ("bad_item", "field"),
    [
        ({"id": 10**9, "status": "closed"}, "id"),
        ({"id": "FIRST", "status": "wontfix"}, "status"),
        ({"id": "FIRST", "status": "closed"}, "id"),  # duplicate of the first item
        ({"id": "1", "status": "closed"}, "id"),  # wrong type
        ({"id": "FIRST", "status": "closed", "verison": 1}, "verison"),
        ("not an object", "non_field_errors"),
    ],
    ids=["unknown-id", "bad-status", "duplicate-id", "wrong-type", "unknown-key", "not-object"],
)
def test_bulk_with_one_bad_item_among_50_changes_nothing(maintainer_client, bad_item, field):
    ids = make_issues(51)
    body = [{"id": pk, "status": "closed"} for pk in ids[:50]]
    if isinstance(bad_item, dict) and bad_item["id"] == "FIRST":
        bad_item = {**bad_item, "id": ids[0]}
    body.insert(25, bad_item)
    before = db_state()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    data = response.json()
    assert "detail" in data
    assert len(data["errors"]) == 1
    assert data["errors"][0]["index"] == 25
    assert field in data["errors"][0]["errors"]
    assert db_state() == before


def test_bulk_lists_every_bad_item(maintainer_client):
    ids = make_issues(5)
    body = [
        {"id": ids[0], "status": "closed"},
        {"id": 999_999_999, "status": "closed"},
        {"id": ids[1], "status": "nope"},
        {"id": ids[0], "status": "resolved"},
        {"id": True, "status": "closed"},
        {"id": ids[2], "status": "closed", "version": "x"},
        {"id": 2**63, "status": "closed"},
    ]
    before = db_state()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["index"], sorted(e["errors"])) for e in errors] == [
        (1, ["id"]),
        (2, ["status"]),
        (3, ["id"]),
        (4, ["id"]),
        (5, ["version"]),
        (6, ["id"]),
    ]
    assert errors[0]["id"] == 999_999_999
    assert db_state() == before


def test_bulk_stale_version_is_a_409_listing_it_and_changes_nothing(maintainer_client):
    ids = make_issues(4)
    Issue.objects.filter(pk=ids[1]).update(version=3)
    body = [{"id": pk, "status": "resolved", "version": 1} for pk in ids]
    before = db_state()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 409
    data = response.json()
    assert data["conflicts"] == [{"id": ids[1], "expected": 1, "current": 3}]
    assert data["detail"]
    assert db_state() == before


def test_bulk_matching_versions_succeed(maintainer_client):
    ids = make_issues(2)
    response = maintainer_client.post(
        URL, [{"id": pk, "status": "resolved", "version": 1} for pk in ids], format="json"
    )
    assert response.status_code == 200
    assert set(Issue.objects.values_list("version", flat=True)) == {2}


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": [1]}, {"ids": "1,2", "status": "open"}, {"ids": [1], "status": "open", "x": 1}, [], "open", 5],
)
def test_bulk_badly_shaped_bodies_are_400(maintainer_client, body):
    response = maintainer_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert isinstance(response.json(), dict)


def test_bulk_over_the_item_limit_is_400(maintainer_client, settings):
    settings.BULK_MAX_ITEMS = 5
    ids = make_issues(6)
    response = maintainer_client.post(URL, {"ids": ids, "status": "closed"}, format="json")
    assert response.status_code == 400
    assert "At most 5" in str(response.json())
    assert not Issue.objects.filter(status=Status.CLOSED).exists()


def test_bulk_needs_a_maintainer(viewer_client, member_client, anon_client):
    ids = make_issues(1)
    body = {"ids": ids, "status": "closed"}
    assert anon_client.post(URL, body, format="json").status_code == 401
    assert viewer_client.post(URL, body, format="json").status_code == 403
    assert member_client.post(URL, body, format="json").status_code == 403
    assert Issue.objects.get().status == Status.OPEN


def test_bulk_answers_with_and_without_trailing_slash(maintainer_client):
    ids = make_issues(1)
    assert maintainer_client.post(URL + "/", {"ids": ids, "status": "closed"}, format="json").status_code == 200


def test_bulk_query_count_does_not_grow_with_items(maintainer_client):
    big = 1000
    small_ids = make_issues(10)
    big_ids = make_issues(big)
    maintainer_client.get("/api/issues?page_size=1")  # warm the user's permission cache path

    with CaptureQueriesContext(connection) as small:
        response = maintainer_client.post(URL, {"ids": small_ids, "status": "closed"}, format="json")
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as large:
        response = maintainer_client.post(URL, {"ids": big_ids, "status": "closed"}, format="json")
        assert response.status_code == 200
        assert response.json()["updated"] == big

    assert len(large.captured_queries) == len(small.captured_queries)
    assert IssueEvent.objects.count() == 10 + big


# --- projects and keys ----------------------------------------------------------------------------------


def keys_of(ids: list[int]) -> list[str]:
    """The keys (``MAIN-3``) of the issues ``ids``, in that order."""
    found = dict(Issue.objects.filter(pk__in=ids).values_list("pk", "number"))
    projects = dict(Issue.objects.filter(pk__in=ids).values_list("pk", "project__key"))
    return [f"{projects[pk]}-{found[pk]}" for pk in ids]


@pytest.fixture
def web(db):
    return ProjectFactory(key="WEB")


@pytest.fixture
def secret(db):
    return ProjectFactory(key="SECRET", visibility=Visibility.PRIVATE)


def test_bulk_across_two_maintained_projects(maintainer_client, maintainer, web):
    add_member(maintainer, web, "maintainer")
    main_ids, web_ids = make_issues(2), make_issues(2, project=web)
    body = {"ids": [main_ids[0], web_ids[0], main_ids[1], web_ids[1]], "status": "resolved"}

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["updated"] == 4
    assert set(Issue.objects.values_list("status", flat=True)) == {"resolved"}


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_bulk_over_a_project_the_caller_does_not_maintain_is_an_item_error_and_changes_nothing(
    maintainer_client, maintainer, web, role
):
    add_member(maintainer, web, role)
    main_ids, web_ids = make_issues(2), make_issues(2, project=web)
    body = [{"id": pk, "status": "closed"} for pk in (main_ids[0], web_ids[0], main_ids[1], web_ids[1])]
    before = db_state()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    message = ["You need the maintainer role in project WEB to change this issue in bulk."]
    assert response.json()["errors"] == [
        {"index": 1, "id": web_ids[0], "errors": {"id": message}},
        {"index": 3, "id": web_ids[1], "errors": {"id": message}},
    ]
    assert db_state() == before


def test_bulk_an_invisible_issue_is_answered_exactly_as_an_unknown_id(maintainer_client, secret):
    visible = make_issues(1)
    (hidden,) = make_issues(1, project=secret)
    (hidden_key,) = keys_of([hidden])
    bodies = [
        [{"id": visible[0], "status": "closed"}, {"id": hidden, "status": "closed"}],
        {"ids": [hidden_key.lower(), visible[0]], "status": "open"},
        [{"id": hidden, "status": "closed", "version": 7}],  # a stale version would be a 409 if it were seen
    ]
    before = db_state()
    invisible = [maintainer_client.post(URL, body, format="json") for body in bodies]
    assert db_state() == before
    assert Issue.objects.get(pk=hidden).status == Status.OPEN

    Issue.objects.filter(pk=hidden).delete()  # now the same id and key name no issue at all
    unknown = [maintainer_client.post(URL, body, format="json") for body in bodies]

    for seen, missing in zip(invisible, unknown, strict=True):
        assert seen.status_code == missing.status_code == 400
        assert seen.json() == missing.json()
    assert invisible[0].json()["errors"] == [
        {"index": 1, "id": hidden, "errors": {"id": [f"No issue has id {hidden}."]}}
    ]
    assert invisible[1].json()["errors"] == [
        {"index": 0, "id": hidden_key.lower(), "errors": {"id": [f"No issue has key {hidden_key}."]}}
    ]


def test_bulk_staff_change_issues_of_every_project(staff_client, secret):
    ids = make_issues(1) + make_issues(1, project=secret)
    response = staff_client.post(URL, [{"id": key, "status": "closed"} for key in keys_of(ids)], format="json")
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == ids
    assert set(Issue.objects.values_list("status", flat=True)) == {"closed"}


def test_bulk_ids_may_be_keys_in_any_case(maintainer_client, maintainer, web):
    add_member(maintainer, web, "maintainer")
    ids = make_issues(2) + make_issues(1, project=web)
    keys = keys_of(ids)
    body = [
        {"id": keys[0].lower(), "status": "closed"},
        {"id": ids[1], "status": "in_progress", "version": 1},
        {"id": keys[2], "status": "resolved", "version": 1},
    ]

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["results"] == [
        {"id": ids[0], "status": "closed", "version": 2},
        {"id": ids[1], "status": "in_progress", "version": 2},
        {"id": ids[2], "status": "resolved", "version": 2},
    ]
    statuses = dict(Issue.objects.values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == ["closed", "in_progress", "resolved"]
    response = maintainer_client.post(URL, {"ids": [keys[0], ids[1]], "status": "open"}, format="json")
    assert response.status_code == 200 and response.json()["updated"] == 2


def test_bulk_a_stale_version_of_an_item_named_by_key_is_a_409_by_id(maintainer_client):
    (pk,) = make_issues(1)
    Issue.objects.filter(pk=pk).update(version=4)
    response = maintainer_client.post(URL, [{"id": keys_of([pk])[0], "status": "closed", "version": 2}], format="json")
    assert response.status_code == 409
    assert response.json()["conflicts"] == [{"id": pk, "expected": 2, "current": 4}]


def test_bulk_duplicates_are_found_across_ids_and_keys(maintainer_client):
    ids = make_issues(2)
    keys = keys_of(ids)
    body = [
        {"id": ids[0], "status": "closed"},
        {"id": keys[1], "status": "closed"},
        {"id": keys[0], "status": "closed"},  # the issue of item 0, by key
        {"id": keys[1].lower(), "status": "closed"},  # item 1's key again, in another case
        {"id": ids[1], "status": "closed"},  # the issue of item 1, by id
    ]
    before = db_state()

    response = maintainer_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 2, "id": keys[0], "errors": {"id": [f"Duplicate id: issue {keys[0]} is already item 0."]}},
        {"index": 3, "id": keys[1].lower(), "errors": {"id": [f"Duplicate id: issue {keys[1]} is already item 1."]}},
        {"index": 4, "id": ids[1], "errors": {"id": [f"Duplicate id: issue {ids[1]} is already item 1."]}},
    ]
    assert db_state() == before


@pytest.mark.parametrize(
    "bad_id", ["1", "MAIN-", "-1", "M-1", "MAIN-1x", "ÄB-1", "MAIN-1234567890123456789", "", None, 1.5]
)
def test_bulk_a_string_that_is_not_a_key_is_an_item_error(maintainer_client, bad_id):
    ids = make_issues(1)
    response = maintainer_client.post(
        URL, [{"id": ids[0], "status": "closed"}, {"id": bad_id, "status": "closed"}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "id": bad_id, "errors": {"id": ["A valid integer id or issue key (such as WEB-42) is required."]}}
    ]
    assert Issue.objects.get().status == Status.OPEN


def test_bulk_an_unknown_key_is_an_item_error(maintainer_client):
    ids = make_issues(1)
    body = [
        {"id": ids[0], "status": "closed"},
        {"id": "MAIN-999999", "status": "closed"},
        {"id": "NOPE-1", "status": "closed"},
    ]
    response = maintainer_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert [error["errors"] for error in response.json()["errors"]] == [
        {"id": ["No issue has key MAIN-999999."]},
        {"id": ["No issue has key NOPE-1."]},
    ]


def test_bulk_query_count_with_keys_does_not_grow_with_items(maintainer_client, maintainer, web):
    add_member(maintainer, web, "maintainer")
    small_keys = keys_of(make_issues(5) + make_issues(5, project=web))
    big_keys = keys_of(make_issues(300) + make_issues(300, project=web))
    maintainer_client.get("/api/issues?page_size=1")

    with CaptureQueriesContext(connection) as small:
        response = maintainer_client.post(URL, {"ids": small_keys, "status": "closed"}, format="json")
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as large:
        response = maintainer_client.post(URL, {"ids": big_keys, "status": "closed"}, format="json")
        assert response.status_code == 200
        assert response.json()["updated"] == 600

    assert len(large.captured_queries) == len(small.captured_queries)


# --- real concurrency -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_overlapping_bulks_in_opposite_orders_never_deadlock_and_serialise(transactional_db):
    user = UserFactory(username="bulk-maintainer", role="maintainer")
    client_a, client_b = make_client(user), make_client(user)
    ids = make_issues(30)
    a_ids, b_ids = ids[:20], list(reversed(ids[10:]))
    statuses = ["in_progress", "resolved", "closed", "open"]

    for round_no in range(50):
        status_a = statuses[round_no % 4]
        status_b = statuses[(round_no + 1) % 4]
        before = {pk: (s, v) for pk, s, v in Issue.objects.values_list("pk", "status", "version")}
        answers: dict[str, int] = {}

        def run_a(status_a=status_a, answers=answers):
            body = [{"id": pk, "status": status_a} for pk in a_ids]
            answers["a"] = client_a.post(URL, body, format="json").status_code

        def run_b(status_b=status_b, answers=answers):
            body = [{"id": pk, "status": status_b} for pk in b_ids]
            answers["b"] = client_b.put(URL, body, format="json").status_code

        run_together(run_a, run_b)
        assert answers == {"a": 200, "b": 200}, (round_no, answers)

        after = {pk: (s, v) for pk, s, v in Issue.objects.values_list("pk", "status", "version")}

        def serial(first, second, before=before):
            state = dict(before)
            for chosen, status in (first, second):
                for pk in chosen:
                    old_status, version = state[pk]
                    if old_status != status:
                        state[pk] = (status, version + 1)
            return state

        a_then_b = serial((a_ids, status_a), (b_ids, status_b))
        b_then_a = serial((b_ids, status_b), (a_ids, status_a))
        assert after in (a_then_b, b_then_a), round_no

    changes = sum(v - 1 for v in Issue.objects.values_list("version", flat=True))
    assert IssueEvent.objects.filter(type=EventType.STATUS_CHANGED, source=Source.BULK).count() == changes


@pytest.mark.slow
def test_bulk_racing_a_patch_loses_no_update(transactional_db):
    user = UserFactory(username="race-maintainer", role="maintainer")
    bulk_client, patch_client = make_client(user), make_client(user)
    (issue_id,) = make_issues(1)

    for round_no in range(20):
        start = Issue.objects.get(pk=issue_id)
        target = "closed" if start.status != "closed" else "open"
        title = f"Renamed {round_no}"
        answers: dict[str, object] = {}

        def run_bulk(target=target, answers=answers):
            answers["bulk"] = bulk_client.post(URL, {"ids": [issue_id], "status": target}, format="json").status_code

        def run_patch(title=title, version=start.version, answers=answers):
            codes = []
            for _ in range(5):  # a 409 tells the client to re-read and retry; it must then land
                response = patch_client.patch(
                    f"/api/issues/{issue_id}", {"title": title, "version": version}, format="json"
                )
                codes.append(response.status_code)
                if response.status_code != 409:
                    break
                version = response.json()["current_version"]
            answers["patch"] = codes

        run_together(run_bulk, run_patch)
        assert answers["bulk"] == 200
        assert answers["patch"][-1] == 200, answers
        assert all(code in (200, 409) for code in answers["patch"])

        end = Issue.objects.get(pk=issue_id)
        assert (end.title, end.status) == (title, target), round_no
        assert end.version == start.version + 2
        new_events = IssueEvent.objects.filter(issue_id=issue_id, timestamp__gt=start.updated_at)
        assert sorted(new_events.values_list("type", flat=True)) == [EventType.STATUS_CHANGED, EventType.TITLE_CHANGED]


def test_bulk_options_is_answered(maintainer_client, member_client):
    """OPTIONS must not try to fetch an object for PUT on this collection route (it used to be a 500)."""
    assert maintainer_client.options(URL).status_code == 200
    assert member_client.options(URL + "/").status_code == 200
