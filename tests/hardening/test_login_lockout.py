"""Login lockout (django-axes): AXES_FAILURE_LIMIT failed logins lock a username+address pair and an address
for AXES_COOLOFF_TIME, on the admin's and the browsable API's login pages (an HTML 429) and on
POST /api/auth/token (a JSON 429); the right password is refused while locked; other addresses are not."""

import datetime as dt
import os

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from api.backends import client_ip_address
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"
LIMIT = settings.AXES_FAILURE_LIMIT
COOL_OFF_MINUTES = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
ATTACKER = "10.1.1.1"
OTHER = "10.2.2.2"


@pytest.fixture
def alice():
    return UserFactory(username="alice", role="member", is_staff=True, password=PASSWORD)


def admin_login(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def api_login(client: Client, username: str, password: str):
    return client.post("/api-auth/login/?next=/api/issues", {"username": username, "password": password})


def token_login(client: APIClient, username: str, password: str):
    return client.post("/api/auth/token", {"username": username, "password": password}, format="json")


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def assert_html_lockout(response) -> None:
    assert response.status_code == 429, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "<h1>Too many login attempts</h1>" in body
    assert f"locked for {COOL_OFF_MINUTES} minutes" in body
    assert response["Retry-After"] == str(COOL_OFF_MINUTES * 60)


def assert_json_lockout(response) -> None:
    assert response.status_code == 429, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "locked_out"
    assert f"Too many failed login attempts: logging in is locked for {COOL_OFF_MINUTES} minutes" in body["detail"]
    assert response["Retry-After"] == str(COOL_OFF_MINUTES * 60)


def test_the_configured_defaults() -> None:
    """5 failures, 15 minutes, unless AXES_FAILURE_LIMIT / AXES_COOLOFF_MINUTES say otherwise."""
    assert int(os.environ.get("AXES_FAILURE_LIMIT") or 5) == LIMIT
    assert int(os.environ.get("AXES_COOLOFF_MINUTES") or 15) == COOL_OFF_MINUTES
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"], "ip_address"]


def test_admin_login_locks_after_the_limit_and_refuses_the_right_password(alice) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for attempt in range(1, LIMIT):
        response = admin_login(attacker, "alice", f"wrong-{attempt}")
        assert response.status_code == 200  # the form again, with its error
        assert b"Please enter the correct username and password" in response.content
    assert_html_lockout(admin_login(attacker, "alice", "wrong-last"))

    assert_html_lockout(admin_login(attacker, "alice", PASSWORD))
    assert not logged_in(attacker)
    assert attacker.get("/admin/").status_code == 302  # to the login page

    # The pair and the address are locked; alice from another address is not.
    elsewhere = Client(REMOTE_ADDR=OTHER)
    assert admin_login(elsewhere, "alice", PASSWORD).status_code == 302
    assert logged_in(elsewhere)
    assert elsewhere.get("/admin/").status_code == 200


def test_failures_for_many_usernames_lock_the_address(alice) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(LIMIT - 1):
        assert admin_login(attacker, f"guess-{n}", "x").status_code == 200
    assert_html_lockout(admin_login(attacker, f"guess-{LIMIT}", "x"))
    # No failure was ever counted for alice, but her address is locked.
    assert not AccessAttempt.objects.filter(username="alice").exists()
    assert_html_lockout(admin_login(attacker, "alice", PASSWORD))
    assert not logged_in(attacker)
    assert admin_login(Client(REMOTE_ADDR=OTHER), "alice", PASSWORD).status_code == 302


def test_browsable_api_login_locks_too(alice) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT - 1):
        assert api_login(attacker, "alice", "wrong").status_code == 200
    assert_html_lockout(api_login(attacker, "alice", "wrong"))
    assert_html_lockout(api_login(attacker, "alice", PASSWORD))
    assert not logged_in(attacker)
    response = api_login(Client(REMOTE_ADDR=OTHER), "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/api/issues"


def test_token_endpoint_answers_json_when_locked(alice) -> None:
    attacker = APIClient(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT - 1):
        response = token_login(attacker, "alice", "wrong")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with the given credentials."]}
    assert_json_lockout(token_login(attacker, "alice", "wrong"))
    locked = token_login(attacker, "alice", PASSWORD)
    assert_json_lockout(locked)
    assert "token" not in locked.json()
    # A form-encoded body is refused the same way.
    assert_json_lockout(attacker.post("/api/auth/token", {"username": "alice", "password": PASSWORD}))
    assert set(token_login(APIClient(REMOTE_ADDR=OTHER), "alice", PASSWORD).json()) == {"token"}


def test_failures_on_every_login_page_count_together(alice) -> None:
    browser, api = Client(REMOTE_ADDR=ATTACKER), APIClient(REMOTE_ADDR=ATTACKER)
    for n in range(LIMIT - 1):
        login = (admin_login, api_login)[n % 2]
        assert login(browser, "alice", "wrong").status_code == 200
    assert_json_lockout(token_login(api, "alice", "wrong"))
    assert_html_lockout(admin_login(browser, "alice", PASSWORD))


def test_token_throttle_and_lockout_cooperate(alice, settings) -> None:
    """The token endpoint's own throttle answers first when it is the stricter one; throttled requests never
    reach authenticate(), so they count no failure. Both answers are JSON."""
    cache.clear()
    # Hours: the throttle counts in fixed windows, and a minute's could end between two of these requests.
    settings.THROTTLE_RATES = {"anon": None, "user": None, "auth": f"{LIMIT - 2}/hour"}
    attacker = APIClient(REMOTE_ADDR=ATTACKER)
    statuses = [token_login(attacker, "alice", "wrong").status_code for _ in range(LIMIT + 2)]
    throttled = token_login(attacker, "alice", "wrong")
    assert statuses == [400] * (LIMIT - 2) + [429] * 4
    assert throttled.json()["code"] == "throttled" and throttled["Content-Type"] == "application/json"
    assert AccessAttempt.objects.get(ip_address=ATTACKER).failures_since_start == LIMIT - 2

    cache.clear()
    settings.THROTTLE_RATES = {"anon": None, "user": None, "auth": f"{LIMIT * 4}/hour"}
    statuses = [token_login(attacker, "alice", "wrong").status_code for _ in range(3)]
    assert statuses == [400, 429, 429]
    assert_json_lockout(token_login(attacker, "alice", PASSWORD))
    cache.clear()


def test_a_forged_x_forwarded_for_does_not_escape_the_lock_without_proxies(alice, settings) -> None:
    settings.CLIENT_NUM_PROXIES = 0
    for n in range(LIMIT):
        Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(
            "/admin/login/", {"username": "alice", "password": "wrong"}
        )
    forged = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert_html_lockout(admin_login(forged, "alice", PASSWORD))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_behind_a_proxy_the_forwarded_address_is_locked(alice, settings) -> None:
    settings.CLIENT_NUM_PROXIES = 1
    proxy = "10.0.0.1"
    attacker = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"203.0.113.9, {ATTACKER}")
    for _ in range(LIMIT - 1):
        assert admin_login(attacker, "alice", "wrong").status_code == 200
    assert_html_lockout(admin_login(attacker, "alice", "wrong"))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    # Another client behind the same proxy is not locked.
    colleague = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=OTHER)
    assert admin_login(colleague, "alice", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("num_proxies", "forwarded", "expected"),
    [
        (0, None, "10.9.9.9"),
        (0, "1.1.1.1", "10.9.9.9"),
        (1, None, "10.9.9.9"),
        (1, "1.1.1.1", "1.1.1.1"),
        (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),
        (2, "6.6.6.6, 1.1.1.1, 2.2.2.2", "1.1.1.1"),
        (3, "1.1.1.1", "1.1.1.1"),
    ],
)
def test_client_ip_address(settings, rf, num_proxies: int, forwarded: str | None, expected: str) -> None:
    settings.CLIENT_NUM_PROXIES = num_proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    assert client_ip_address(rf.get("/", REMOTE_ADDR="10.9.9.9", **headers)) == expected


def test_the_lock_ends_after_the_cool_off(alice) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT):
        admin_login(attacker, "alice", "wrong")
    assert_html_lockout(admin_login(attacker, "alice", PASSWORD))
    AccessAttempt.objects.update(
        attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=5)
    )
    assert admin_login(attacker, "alice", PASSWORD).status_code == 302


def test_axes_reset_lifts_the_lock(alice) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(LIMIT):
        admin_login(attacker, "alice", "wrong")
    assert_html_lockout(admin_login(attacker, "alice", PASSWORD))
    call_command("axes_reset", verbosity=0)
    assert not AccessAttempt.objects.exists()
    assert admin_login(attacker, "alice", PASSWORD).status_code == 302


def test_a_login_without_a_request_is_not_refused(alice) -> None:
    """Server-side code and the test client's login() call authenticate() without a request: not counted,
    not refused (axes alone would raise)."""
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    assert not AccessAttempt.objects.exists()
