"""Every GET is bounded (issue 11, defect 3): multi-valued query parameters of the list, the export and the
reports are de-duplicated (label names ignoring case) and capped (``issues.filters.FILTER_MAX_VALUES``), repeats
and comma lists alike; past a cap the answer is a 400 naming the parameter. The last test sends such requests
concurrently to a live server and checks that each answers, and the service with it, within a bound."""

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.filters import FILTER_MAX_VALUES
from issues.models import Issue, Label
from tests.factories import IssueFactory, LabelFactory, UserFactory, default_project
from tests.helpers import assert_json_error, auth_header, openapi, streamed_csv_rows

LIST, EXPORT = "/api/issues", "/api/issues/export"
TOP, LATENCY, THROUGHPUT = "/api/reports/top-assignees", "/api/reports/latency", "/api/reports/throughput"
# Each endpoint and its multi-valued parameters.
MULTI_VALUED = {
    LIST: ("label", "status", "priority"),
    EXPORT: ("label", "status", "priority"),
    TOP: ("label", "status"),
    LATENCY: ("label", "priority"),
}
ENUMS = {"status": ["open", "in_progress", "resolved", "closed"], "priority": ["low", "medium", "high", "critical"]}
CASES = [(path, name) for path, names in MULTI_VALUED.items() for name in names]
LABEL_CAP = FILTER_MAX_VALUES["label"]
# ``project`` (keys, any of them) narrows the list, the export and every report.
PROJECT_PATHS = [LIST, EXPORT, TOP, LATENCY, THROUGHPUT]
PROJECT_CAP = FILTER_MAX_VALUES["project"]
TIMES = 1_000


def too_many(cap: int) -> list[str]:
    return [f"At most {cap} values are allowed."]


def query(**params: object) -> str:
    """A query string; a list value is a repeated parameter."""
    return "?" + urlencode(params, doseq=True)


def answer(client, path: str, query_string: str = "") -> tuple[int, object]:
    """The status and what the endpoint answered: the list's ids, the export's ids, a report's JSON."""
    response = client.get(path + query_string)
    if response.status_code != 200:
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        return response.status_code, response.json()
    if path == EXPORT:
        return 200, sorted(int(row["id"]) for row in streamed_csv_rows(response))
    body = response.json()
    if path == LIST:
        return 200, sorted(row["id"] for row in body["results"])
    return 200, body


def distinct_names(n: int) -> list[str]:
    return [f"lbl{i:04d}" for i in range(n)]


@pytest.fixture
def tracker(db):
    """Issues the four endpoints all see: A (bug, ui), B (bug), C (ui), D (none); A and B resolved."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    bug, ui = LabelFactory(name="bug"), LabelFactory(name="ui")
    now = timezone.now()
    resolved = {"status": "resolved", "resolved_at": now, "created_at": now - timedelta(hours=2)}
    issues = {
        "A": IssueFactory(title="A", assignee=alice, priority="high", labels=[bug, ui], **resolved),
        "B": IssueFactory(title="B", assignee=bob, priority="high", labels=[bug], **resolved),
        "C": IssueFactory(title="C", assignee=alice, labels=[ui]),
        "D": IssueFactory(title="D", assignee=bob),
    }
    return {key: issue.pk for key, issue in issues.items()}


# --- caps: repeats and comma lists count alike --------------------------------------------------------------


@pytest.mark.parametrize("form", ["repeated", "comma list"])
@pytest.mark.parametrize("path", list(MULTI_VALUED))
def test_a_label_repeated_1000_times_with_distinct_names_is_a_400_naming_it(viewer_client, path, form):
    names = distinct_names(TIMES)
    status, body = answer(viewer_client, path, query(label=names if form == "repeated" else ",".join(names)))
    assert (status, body) == (400, {"label": too_many(LABEL_CAP)})


@pytest.mark.parametrize("path", list(MULTI_VALUED))
def test_the_label_cap_counts_repeats_and_comma_lists_together(viewer_client, path):
    names = distinct_names(LABEL_CAP + 1)
    at_cap = query(label=[",".join(names[:10]), *names[10:LABEL_CAP]])
    assert answer(viewer_client, path, at_cap)[0] == 200
    past_cap = query(label=[",".join(names[:10]), *names[10:]])
    assert answer(viewer_client, path, past_cap) == (400, {"label": too_many(LABEL_CAP)})


@pytest.mark.parametrize("path", [LIST, EXPORT])
@pytest.mark.parametrize(
    ("param", "values", "cap"),
    [
        ("label", [f"l{n}" for n in range(21)], 20),
        ("label", [",".join(f"l{n}" for n in range(1000))], 20),
        ("status", ["open,closed", "resolved", "in_progress", "done"], 4),
        ("priority", [f"p{n}" for n in range(1000)], 4),
    ],
)
def test_too_many_filter_values_is_400_naming_the_parameter(viewer_client, path, param, values, cap):
    response = viewer_client.get(path, {param: values})
    body = assert_json_error(response, 400)
    assert body == {param: [f"At most {cap} values are allowed."]}


@pytest.mark.parametrize(("path", "name"), [case for case in CASES if case[1] != "label"])
def test_an_enum_with_1000_distinct_values_is_a_400_naming_it(viewer_client, path, name):
    junk = [f"v{i}" for i in range(TIMES)]
    for params in (query(**{name: junk}), query(**{name: ",".join(junk)})):
        assert answer(viewer_client, path, params) == (400, {name: too_many(len(ENUMS[name]))})


@pytest.mark.parametrize(("path", "name"), [case for case in CASES if case[1] != "label"])
def test_an_enum_repeated_1000_times_is_de_duplicated_to_a_200(tracker, viewer_client, path, name):
    """``status=open`` ×1000 is one value; every value of the enum ×250 (repeats and comma lists) is four."""
    value = "open" if name == "status" else "high"
    once = answer(viewer_client, path, query(**{name: value}))
    assert once[0] == 200 and once[1], once  # something matches, so the comparison below means something
    assert answer(viewer_client, path, query(**{name: [value] * TIMES})) == once
    every = ENUMS[name]
    all_once = answer(viewer_client, path, query(**{name: every}))
    assert all_once[0] == 200
    mixed = [",".join(every)] * (TIMES // 8) + every * (TIMES // 8)  # 1,000 values in 625 parameters
    assert answer(viewer_client, path, query(**{name: mixed})) == all_once


@pytest.mark.parametrize("form", ["repeated", "comma list"])
@pytest.mark.parametrize("path", PROJECT_PATHS)
def test_more_project_keys_than_the_cap_is_a_400_naming_it(viewer_client, path, form):
    """The cap comes first, as for every multi-valued parameter: 1,000 keys are not looked up one by one."""
    keys = [f"K{n:04d}" for n in range(TIMES)]
    status, body = answer(viewer_client, path, query(project=keys if form == "repeated" else ",".join(keys)))
    assert (status, body) == (400, {"project": too_many(PROJECT_CAP)})


@pytest.mark.parametrize("path", PROJECT_PATHS)
def test_a_project_key_repeated_1000_times_in_any_case_is_one_key(tracker, viewer_client, path):
    key = default_project().key
    once = answer(viewer_client, path, query(project=key))
    assert once[0] == 200 and once[1], once  # something matches, so the comparisons below mean something
    spellings = [key, key.lower(), key.capitalize()]
    assert answer(viewer_client, path, query(project=spellings * (TIMES // len(spellings)))) == once
    assert answer(viewer_client, path, query(project=",".join(spellings * (TIMES // len(spellings))))) == once


# --- de-duplication of label names ignores case ---------------------------------------------------------


@pytest.mark.parametrize("path", list(MULTI_VALUED))
def test_label_names_are_de_duplicated_ignoring_case(tracker, viewer_client, path):
    once = answer(viewer_client, path, query(label="bug"))
    assert once[0] == 200
    if path in (LIST, EXPORT):
        assert once[1] == sorted([tracker["A"], tracker["B"]])
    assert answer(viewer_client, path, query(label=["bug", "BUG", "bug"])) == once
    assert answer(viewer_client, path, query(label="bug,Bug,bUG")) == once
    spellings = ["bug", "BUG", "Bug", "bUg", "buG", "BUg", "bUG", "BuG"]
    assert answer(viewer_client, path, query(label=spellings * (TIMES // len(spellings)))) == once


def test_several_labels_must_all_match_ignoring_case(tracker, viewer_client):
    a = [tracker["A"]]
    assert answer(viewer_client, LIST, query(label=["bug", "ui"]))[1] == a
    assert answer(viewer_client, LIST, query(label="BUG,Ui"))[1] == a
    assert answer(viewer_client, LIST, query(label=["bug", "ui", "BUG", "UI"] * 250))[1] == a
    assert answer(viewer_client, EXPORT, query(label=["Bug", "UI"]))[1] == a
    assert answer(viewer_client, LIST, query(label=["bug", "nope"]))[1] == []
    assert answer(viewer_client, EXPORT, query(label=["bug", "nope"]))[1] == []
    assert answer(viewer_client, LIST, query(label=["ui"]))[1] == sorted([tracker["A"], tracker["C"]])
    top = answer(viewer_client, TOP, query(label=["bug", "UI"]))[1]
    assert top == [{"assignee": Issue.objects.get(pk=tracker["A"]).assignee_id, "username": "alice", "issue_count": 1}]
    assert answer(viewer_client, LATENCY, query(label=["BUG", "ui"]))[1]["resolved_count"] == 1
    assert answer(viewer_client, LATENCY, query(label=["bug"]))[1]["resolved_count"] == 2
    assert answer(viewer_client, LATENCY, query(label=["bug", "nope"]))[1]["resolved_count"] == 0


def test_several_labels_are_one_grouped_subquery_however_many(tracker, viewer_client):
    """One EXISTS per label made the planner order one more join per label (the export's cursor then chose a
    nested loop over every issue); several labels are one GROUP BY … HAVING subquery instead."""
    project = default_project()
    Label.objects.bulk_create(Label(project=project, name=name) for name in distinct_names(LABEL_CAP))
    cases = ((["bug"], False), (["bug", "ui"], True), (distinct_names(LABEL_CAP), True))
    for (names, grouped), path in itertools.product(cases, (LIST, EXPORT)):
        with CaptureQueriesContext(connection) as ctx:
            assert answer(viewer_client, path, query(label=names))[0] == 200
        # The issues read (the list counts labels alone by their links, and reads no page when nothing matches).
        statements = [q["sql"] for q in ctx.captured_queries if '"issues_issue"' in q["sql"]]
        assert statements or (path == LIST and names == distinct_names(LABEL_CAP))
        for sql in statements:
            upper = sql.upper()
            assert upper.count("HAVING") == (1 if grouped else 0), sql
            assert upper.count("EXISTS") == (0 if grouped else 1), sql


# --- the other parameters of one GET ---------------------------------------------------------------------


def test_ordering_naming_fields_again_changes_nothing(tracker, viewer_client):
    first = viewer_client.get(LIST + query(ordering="id"))
    assert [row["id"] for row in first.json()["results"]] == sorted(tracker.values())
    noisy = viewer_client.get(LIST + query(ordering=",".join(["id", "-id", "priority", "-created_at"] * 250)))
    assert noisy.status_code == 200
    assert [row["id"] for row in noisy.json()["results"]] == sorted(tracker.values())
    repeated = viewer_client.get(LIST + query(ordering=["-id"] * TIMES))  # a repeated single value: the last wins
    assert [row["id"] for row in repeated.json()["results"]] == sorted(tracker.values(), reverse=True)
    bad = viewer_client.get(LIST + query(ordering=",".join(["nope"] * TIMES)))
    assert bad.status_code == 400 and "ordering" in bad.json()


@pytest.mark.parametrize("path", [LIST, EXPORT])
@pytest.mark.parametrize(
    ("name", "value"),
    [("q", "x" * 4096), ("created_after", "9" * 4096), ("label", "x" * 4096), ("assignee", "1" * 4096)],
)
def test_a_4kb_value_is_a_400_naming_it(viewer_client, path, name, value):
    status, body = answer(viewer_client, path, query(**{name: value}))
    assert status == 400 and list(body) == [name], body


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (LIST, {"assignee": [str(n) for n in range(1, TIMES + 1)]}),
        (LIST, {"q": ["x"] * (TIMES - 1) + ["B"]}),
        (EXPORT, {"reporter": ["abc"] * (TIMES - 1) + ["1"]}),
        (LATENCY, {"assignee": ["bob"] * (TIMES - 1) + ["none"]}),
        (THROUGHPUT, {"interval": ["year"] * (TIMES - 1) + ["day"]}),
        (THROUGHPUT, {"since": ["0001-01-01"] * (TIMES - 2) + ["2026-01-01"], "until": "2026-02-01"}),
    ],
)
def test_a_single_valued_parameter_repeated_reads_its_last_value(tracker, viewer_client, path, params):
    """As Django reads a repeated parameter: the earlier ones cost nothing, whatever they are."""
    name = next(iter(params))
    last = {**params, name: params[name][-1]}
    once = answer(viewer_client, path, query(**last))
    assert once[0] == 200
    assert answer(viewer_client, path, query(**params)) == once


def test_the_caps_are_in_the_openapi_schema(db, anon_client):
    _, paths = openapi(anon_client)
    for path in (LIST, TOP, LATENCY):
        parameters = {p["name"]: p["schema"] for p in paths[path]["get"]["parameters"]}
        assert parameters["label"]["maxItems"] == LABEL_CAP, (path, parameters["label"])
    for path in (LIST, TOP, LATENCY, THROUGHPUT):
        parameters = {p["name"]: p["schema"] for p in paths[path]["get"]["parameters"]}
        assert parameters["project"]["maxItems"] == PROJECT_CAP, (path, parameters["project"])


@pytest.mark.parametrize("form", ["one repeated", "all distinct"])
@pytest.mark.parametrize("path", [LIST, EXPORT, TOP, LATENCY, THROUGHPUT, "/api/health", "/api/users"])
def test_more_than_1000_parameters_is_a_json_400(viewer_client, path, form):
    """Django parses at most DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) parameters; past that, a JSON 400."""
    if form == "one repeated":
        query_string = query(label=["bug"] * (TIMES + 1))
    else:
        query_string = "?" + "&".join(f"p{i}=1" for i in range(TIMES + 100))
    response = viewer_client.get(path + query_string)
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "bad_request"


def test_more_than_1000_parameters_is_a_json_400_with_debug_on(viewer_client, settings):
    settings.DEBUG = True
    viewer_client.raise_request_exception = False
    response = viewer_client.get(LIST + query(label=["bug"] * (TIMES + 1)))
    assert response.status_code == 400, response.content[:200]


# --- concurrency, over real HTTP ---------------------------------------------------------------------------


def seed_many_labels(issues: int, labels: int, per_issue: int) -> list[str]:
    """``issues`` issues carrying ``per_issue`` of ``labels`` labels each, in the default project (internal: every
    caller sees them); returns the label names."""
    project = default_project()
    reporter = UserFactory(username="seeder")
    users = [UserFactory(username=f"assignee{n}") for n in range(5)]
    names = [f"tag{n:03d}" for n in range(labels)]
    created = Label.objects.bulk_create(Label(project=project, name=name) for name in names)
    now = timezone.now()
    rows = Issue.objects.bulk_create(
        Issue(
            project=project,
            title=f"Issue {n}",
            reporter=reporter,
            assignee=users[n % len(users)],
            priority=("low", "medium", "high", "critical")[n % 4],
            status="resolved" if n % 3 == 0 else "open",
            resolved_at=now if n % 3 == 0 else None,
            created_at=now - timedelta(days=1, minutes=n),
        )
        for n in range(issues)
    )
    through = Issue.labels.through
    through.objects.bulk_create(
        through(issue_id=issue.pk, label_id=created[(n * 7 + k) % labels].pk)
        for n, issue in enumerate(rows)
        for k in range(per_issue)
    )
    return names


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_abusive_requests_answer_fast_and_health_stays_up(live_server):
    headers = auth_header(UserFactory(username="abuser", role="viewer"))
    names = seed_many_labels(issues=400, labels=300, per_issue=8)
    # 1,000 distinct label names, most of them real (a naive filter would join every one), and real names in
    # every case a client may write (de-duplicated to one name).
    distinct = [names[n % len(names)] + ("" if n < len(names) else f"-{n}") for n in range(TIMES)]
    one_name = [names[0].upper() if n % 2 else names[0] for n in range(TIMES)]
    requests_to_send = [
        ("list: label x1000 distinct", LIST, {"label": distinct}, 400),
        ("export: label x1000 distinct", EXPORT, {"label": distinct}, 400),
        ("top-assignees: label x1000 distinct (comma list)", TOP, {"label": ",".join(distinct)}, 400),
        ("latency: priority=high x1000", LATENCY, {"priority": ["high"] * TIMES}, 200),
        ("list: one label in two cases x1000", LIST, {"label": one_name}, 200),
    ]
    base = live_server.url
    assert requests.get(f"{base}/api/health", timeout=5).status_code == 200  # the server is up and warm

    done = threading.Event()
    health: list[tuple[int, float]] = []

    def poll_health() -> None:
        with requests.Session() as session:
            while not done.is_set() or len(health) < 5:
                started = time.perf_counter()
                status = session.get(f"{base}/api/health", timeout=10).status_code
                health.append((status, time.perf_counter() - started))
                time.sleep(0.02)

    barrier = threading.Barrier(len(requests_to_send))

    def send(item: tuple[str, str, dict, int]) -> tuple[str, int, int, float, bytes]:
        label, path, params, expected = item
        with requests.Session() as session:
            session.headers.update(headers)
            barrier.wait()
            started = time.perf_counter()
            response = session.get(f"{base}{path}{query(**params)}", timeout=60)
            body = response.content  # the whole answer, the export's stream included
            return label, expected, response.status_code, time.perf_counter() - started, body

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
            results = list(pool.map(send, requests_to_send * 2))  # two rounds of five at once
    finally:
        done.set()
        poller.join(timeout=30)

    for label, _, status, seconds, _ in results:
        print(f"{label}: {status} in {seconds:.3f} s")
    slowest_health = max(seconds for _, seconds in health)
    print(f"/api/health: {len(health)} polls, slowest {slowest_health:.3f} s")

    for label, expected, status, seconds, body in results:
        assert status == expected, (label, status, body[:200])
        assert seconds < 2.0, (label, seconds)
        if status == 400:
            assert body.startswith(b'{"label":'), (label, body[:200])
    assert all(status == 200 for status, _ in health), health
    assert slowest_health < 1.0, health
