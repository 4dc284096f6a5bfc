"""Profile one endpoint in-process with pyinstrument, and count its SQL queries.

    .venv/bin/python -m bench.profile --db bench_100k --path /api/issues --requests 200
    .venv/bin/python -m bench.profile --db bench_100k --path /api/issues/{id} --method PATCH

Requests go through Django's full WSGI stack (middleware, auth, DRF, serializers) with the bench settings
and DEBUG off, but without gunicorn and the network, so the profile shows where the Python time goes.
``{id}`` in the path is replaced by random issue ids. The database must exist (``make bench`` creates it).
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="bench_100k")
    parser.add_argument("--path", default="/api/issues")
    parser.add_argument("--method", default="GET", choices=["GET", "PATCH", "POST"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument(
        "--split", action="store_true", help="no profiler: each request's wall time split into SQL and the rest"
    )
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = f"{os.environ.get('BENCH_PG', 'postgres://postgres@127.0.0.1:5432')}/{args.db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ["DJANGO_LOG_LEVEL"] = "ERROR"
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler
    from rest_framework.authtoken.models import Token

    from issues.models import Issue

    token = Token.objects.select_related("user").filter(user__username="bench_maintainer").first()
    if token is None:
        sys.exit("no bench_maintainer token in this database: run make bench first")
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    ids = list(Issue.objects.order_by("?").values_list("id", "version")[: args.requests])
    versions = dict(ids)

    def call(i: int) -> int:
        issue_id = ids[i % len(ids)][0]
        path = args.path.replace("{id}", str(issue_id))
        if args.method == "PATCH":
            body = {"title": f"Profile edit {i}", "version": versions[issue_id]}
            response = client.patch(path, body, content_type="application/json")
            if response.status_code == 200:
                versions[issue_id] = response.json()["version"]
        elif args.method == "POST":
            response = client.post(path, {"body": f"Profile comment {i}"}, content_type="application/json")
        else:
            response = client.get(path)
        return response.status_code

    for i in range(5):  # warm-up: connection, caches, imports
        call(i)
    with CaptureQueriesContext(connection) as queries:
        status = call(5)
    print(f"{args.method} {args.path}: status {status}, {len(queries)} queries per request:")
    for q in queries.captured_queries:
        print(f"  {q['time']}s  {q['sql'][:160]}")
    if args.split:
        split(call, args.requests, connection)
        return
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    statuses = [call(i) for i in range(args.requests)]
    profiler.stop()
    elapsed = time.perf_counter() - started
    print(f"\n{args.requests} requests in {elapsed:.2f}s: {elapsed / args.requests * 1000:.2f} ms each, in-process")
    print(f"statuses: { {s: statuses.count(s) for s in set(statuses)} }")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html())


def split(call: Any, requests: int, connection: Any) -> None:
    """Median wall time of a request, and of its time in the database (each statement timed from the cursor, so
    including the round trip): what is left is Python's."""
    walls, sqls = [], []
    spent = [0.0]

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[0] += time.perf_counter() - started

    for i in range(requests):
        spent[0] = 0.0
        started = time.perf_counter()
        with connection.execute_wrapper(timed):
            call(i)
        walls.append(time.perf_counter() - started)
        sqls.append(spent[0])
    wall, sql = statistics.median(walls) * 1000, statistics.median(sqls) * 1000
    print(f"{requests} requests, medians: {wall:.2f} ms wall, {sql:.2f} ms in SQL, {wall - sql:.2f} ms the rest")


if __name__ == "__main__":
    random.seed(1)
    main()
