"""The product's URLs plus three floors, served through the same gunicorn and middleware as the product.

- ``/bench/floor/bytes``: a bare Django view returning fixed bytes (the cost of the stack itself).
- ``/bench/floor/one-row?id=N``: one query (one issue by primary key, ``values()``) and a JsonResponse.
- ``/bench/floor/list``: a hand-written list: the same count as the product's list (``selectors.issue_total``:
  the unfiltered list reads the tally the triggers keep per project) plus one ``values()`` query for the
  first page (newest first), in the product's list shape, as a JsonResponse.
- ``/bench/floor/list-count-star``: the same with ``COUNT(*)`` over the table: not a floor the product is
  judged against, but it shows what counting the rows on each request would cost at each table size.
- ``/bench/floor/list-nocount``: the same without any count (``count`` is null), the reference for keyset
  pagination.

The floors have no authentication, permissions, serializers or prefetching: they are the least work
that can answer the same question, so "product / floor" is the price of everything the product adds. The lists
answer the question of a caller who sees some projects only when given their ids, ``?projects=1,2,3`` (what the
product reads from the caller's memberships); without it, every issue, as for staff.
"""

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from issues import selectors
from issues.access import SYSTEM
from issues.models import Issue

FIELDS = (
    "id",
    "project_id",
    "number",
    "title",
    "description",
    "status",
    "priority",
    "assignee_id",
    "reporter_id",
    "version",
    "created_at",
    "updated_at",
    "resolved_at",
)
PAGE_SIZE = 20
FIXED = b'{"status": "ok"}'


def floor_bytes(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FIXED, content_type="application/json")


def floor_one_row(request: HttpRequest) -> JsonResponse:
    try:
        issue_id = int(request.GET.get("id", "1"))
    except ValueError as exc:
        raise Http404 from exc
    row = Issue.objects.filter(pk=issue_id).values(*FIELDS).first()
    if row is None:
        raise Http404
    return JsonResponse(row)


def _scope(request: HttpRequest) -> tuple[QuerySet, list[int] | None]:
    """The issues the floor lists, newest first, and the projects they are in: those ``?projects=`` names (ids), or
    None for all of them."""
    issues = Issue.objects.order_by("-created_at", "-id")
    if "projects" not in request.GET:
        return issues, None
    try:
        ids = sorted({int(pk) for pk in request.GET["projects"].split(",")})
    except ValueError as exc:
        raise Http404 from exc
    return issues.filter(project_id__in=ids), ids


def floor_list(request: HttpRequest) -> JsonResponse:
    issues, projects = _scope(request)
    return _list_page(request, issues, selectors.issue_total(SYSTEM, projects), "/bench/floor/list")


def floor_list_count_star(request: HttpRequest) -> JsonResponse:
    issues, _ = _scope(request)
    return _list_page(request, issues, issues.count(), "/bench/floor/list-count-star")


def _list_page(request: HttpRequest, issues: QuerySet, count: int, path: str) -> JsonResponse:
    rows = list(issues.values(*FIELDS)[:PAGE_SIZE])
    nxt = request.build_absolute_uri(f"{path}?page=2") if count > PAGE_SIZE else None
    return JsonResponse({"count": count, "next": nxt, "previous": None, "results": rows})


def floor_list_nocount(request: HttpRequest) -> JsonResponse:
    issues, _ = _scope(request)
    rows = list(issues.values(*FIELDS)[: PAGE_SIZE + 1])
    nxt = request.build_absolute_uri("/bench/floor/list-nocount?page=2") if len(rows) > PAGE_SIZE else None
    return JsonResponse({"count": None, "next": nxt, "previous": None, "results": rows[:PAGE_SIZE]})


urlpatterns = [
    path("bench/floor/bytes", floor_bytes),
    path("bench/floor/one-row", floor_one_row),
    path("bench/floor/list", floor_list),
    path("bench/floor/list-count-star", floor_list_count_star),
    path("bench/floor/list-nocount", floor_list_nocount),
    path("", include("issue_tracker.urls")),
]

# The product's JSON error handlers apply here too.
handler400 = "issue_tracker.urls.handler400"
handler404 = "issue_tracker.urls.handler404"
handler500 = "issue_tracker.urls.handler500"
