"""Schemathesis against the project's own OpenAPI schema (/api/schema).

Every operation of the schema is fuzzed (schemathesis's examples, coverage and fuzzing phases), once
authenticated as a member and once as a maintainer, with three checks on every response: no 5xx,
a status code the schema documents, and a body that matches the schema of that status.
FUZZ_EXAMPLES bounds the generated examples per operation: small by default so CI stays at about a
minute; `make fuzz` runs it with many more. The number of cases run is printed at the end of the run.
"""

import itertools
import json
import os
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from issues import services
from issues.models import Label, Role, Visibility
from tests.factories import ProjectFactory, UserFactory, add_member, default_project
from tests.hardening.conftest import FUZZ_STATS
from tests.helpers import auth_header

KEY_CASES = itertools.count()

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(params=["member", "maintainer"])
def fuzz_role(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def keep_test_connection() -> Any:
    """The fuzzer calls the real WSGI handler, whose request_started/finished signals close the database
    connection (it is inside the test's transaction, so not in autocommit); Django's test client
    disconnects them the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, keep_test_connection: None, fuzz_role: str) -> dict[str, Any]:
    """A caller of the role under test in the default project, issues, labels and comments there for the fuzzer to
    hit, and a private project the caller does not see, with an issue and a label of its own (its key, issue and
    label are aimed at too: they must answer as unknown ones do, never with a 5xx)."""
    user = UserFactory(username=f"fuzz-{fuzz_role}", role=fuzz_role)
    other = UserFactory(username="fuzz-other", role="member")
    hidden = ProjectFactory(key="HIDE", visibility=Visibility.PRIVATE)
    add_member(other, hidden, Role.MAINTAINER)
    issues = []
    project = default_project()
    for n, status in enumerate(["open", "in_progress", "resolved", "closed"]):
        issue = services.issue_create(
            actor=other,
            project=project,
            title=f"Seed {n}",
            status=status,
            assignee=user if n % 2 else None,
            labels=["bug", f"l{n}"],
        )
        services.comment_create(issue_id=issue.pk, author=other, body=f"comment {n}")
        issues.append(issue)
    issues.append(services.issue_create(actor=other, project=hidden, title="Hidden", labels=["secret"]))
    for issue in issues:
        issue.refresh_from_db()  # its number
    TARGETS.update(
        issues=[str(issue.pk) for issue in issues] + [issue.key for issue in issues],
        labels=[str(pk) for pk in Label.objects.values_list("pk", flat=True)],
        users=[str(user.pk), str(other.pk)],
        projects=[project.key, hidden.key],
    )
    return {"headers": auth_header(user)}


def load_schema() -> Any:
    """The schema /api/schema serves, generated in-process (no request, no database) at collection."""
    from drf_spectacular.generators import SchemaGenerator

    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(raw, default=str)))
    loaded.app = get_wsgi_application()
    return loaded


schema = load_schema()
TARGETS: dict[str, list[str]] = {}  # filled by the ``seeded`` fixture: ids and keys of objects that exist
# Path parameters other than ``id`` and the kind of object each names.
PATH_TARGETS = {"key": "projects", "project_key": "projects", "user_id": "users"}


def existing_values(operation: str, parameter: str) -> list[str]:
    """The values of path parameter ``parameter`` of ``operation`` that name objects that exist."""
    if parameter == "id":
        kind = "users" if "/users/{id}" in operation else "labels" if "/labels/{id}" in operation else "issues"
    else:
        kind = PATH_TARGETS.get(parameter, "")
    return TARGETS.get(kind, [])


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    # Half the cases aim at objects that exist (issues by id and by key, projects by key), so the fuzzer gets past
    # the 404s.
    label = context.operation.label if context.operation else ""
    choices = {name: existing_values(label, name) for name in path_parameters or {}}
    choices = {name: values for name, values in choices.items() if values}
    if not choices:
        return st.just(path_parameters)
    found = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in choices.items()})
    return st.one_of(st.just(path_parameters), found.map(lambda values: {**path_parameters, **values}))


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: Any, seeded: dict[str, Any], fuzz_role: str) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if key and len(key) <= 200 and all(" " <= char <= "~" for char in key):
        # The coverage phase sends the shortest valid key ("0") with every body: each would be the right 422
        # for a reused key and never reach the view. A per-case suffix keeps the key valid and the cases deep.
        case.headers["Idempotency-Key"] = f"{key}#{next(KEY_CASES)}"
    response = case.call(headers=seeded["headers"])
    FUZZ_STATS.record(fuzz_role, case.operation.label, response.status_code)
    case.validate_response(response, checks=CHECKS, headers=seeded["headers"])
