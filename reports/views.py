"""Report endpoints: parse the query parameters, call one selector, serialize. Any authenticated caller may read
them: each report counts only the issues of the projects the caller can see (``issues.access``)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from issues.access import access_for

from . import selectors
from .serializers import (
    LatencyParamsSerializer,
    LatencySerializer,
    ThroughputParamsSerializer,
    ThroughputPeriodSerializer,
    TopAssigneeSerializer,
    TopAssigneesParamsSerializer,
)

BAD_PARAMS = OpenApiResponse(description='A parameter is invalid: `{"<parameter>": ["message", ...]}`.')


class ReportView(APIView):
    """A read-only report (GET and HEAD). Any authenticated caller may ask (``issues.access.ProjectPermission``
    with no ``permission_map``: authentication only), because the report is computed over the projects the caller
    can see, where every role may read; ``project`` narrows it to some of them."""


class TopAssigneesView(ReportView):
    """Users with the most assigned issues, most first, ties by username. Unassigned issues never count."""

    @extend_schema(
        operation_id="reports_top_assignees",
        parameters=[TopAssigneesParamsSerializer],
        responses={200: TopAssigneeSerializer(many=True), 400: BAD_PARAMS},
    )
    def get(self, request: Request) -> Response:
        access = access_for(request.user)
        params = TopAssigneesParamsSerializer.from_query(request.query_params, access)
        rows = selectors.report_top_assignees(
            access,
            projects=params.get("project"),
            limit=params["limit"],
            statuses=params.get("status", ()),
            labels=params.get("label", ()),
            since=params.get("since"),
            until=params.get("until"),
        )
        return Response(TopAssigneeSerializer(rows, many=True).data)


class LatencyView(ReportView):
    """Resolution time (`resolved_at − created_at`) of issues now resolved or closed: count, mean, median, p90."""

    @extend_schema(
        operation_id="reports_latency",
        parameters=[LatencyParamsSerializer],
        responses={200: LatencySerializer, 400: BAD_PARAMS},
    )
    def get(self, request: Request) -> Response:
        access = access_for(request.user)
        params = LatencyParamsSerializer.from_query(request.query_params, access)
        report = selectors.report_latency(
            access,
            projects=params.get("project"),
            since=params.get("since"),
            until=params.get("until"),
            assignee=params.get("assignee"),
            labels=params.get("label", ()),
            priorities=params.get("priority", ()),
        )
        return Response(LatencySerializer(report).data)


class ThroughputView(ReportView):
    """Issues created and resolved per day, week or month of the window; idle periods appear with zeros."""

    @extend_schema(
        operation_id="reports_throughput",
        parameters=[ThroughputParamsSerializer],
        responses={200: ThroughputPeriodSerializer(many=True), 400: BAD_PARAMS},
    )
    def get(self, request: Request) -> Response:
        access = access_for(request.user)
        params = ThroughputParamsSerializer.from_query(request.query_params, access)
        rows = selectors.report_throughput(
            access,
            projects=params.get("project"),
            interval=params["interval"],
            since=params["since"],
            until=params["until"],
        )
        return Response(ThroughputPeriodSerializer(rows, many=True).data)
