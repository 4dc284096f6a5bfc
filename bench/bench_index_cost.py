"""What each index of the issue tables costs the writes and what it serves the reads, at 1M issues (issue 14).

    .venv/bin/python -m bench.bench_index_cost --db bench_1m_orig [--rounds 5] [--runs 3]

The database is a ``bench.seed --projects 20`` one (1M issues); the caller is ``bench_maintainer``, who sees
projects 1-5. Nothing is changed: every DROP INDEX is inside a transaction that is rolled back.

1. Indexes: every index of issues_issue, issues_issue_labels, issues_issuesearch, issues_issuefacettally,
   issues_issueevent and issues_comment (``pg_indexes``), with ``pg_relation_size``.
2. Reads: the API is run in-process (Django's test client, ``bench.settings``) for each everyday read of
   ``reads()`` and every SQL statement it sends (but the token lookup) is recorded with its parameters. Each is
   run under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` (``--runs`` times after one warm-up, the median
   execution time), and the indexes its plan uses are noted. The read's figure is the sum over its statements.
   Then, for each index, every read whose plan used it is explained again inside ``BEGIN; DROP INDEX …``
   (``ALTER TABLE … DROP CONSTRAINT … CASCADE`` for a constraint's index) ``… ROLLBACK``: ms with and without.
   The statements are run with their values inlined, so the planner makes a custom plan (the API's prepared
   statements may use a generic one after five executions).
3. Writes, each in a transaction that is rolled back (the same rows in every round):
   - bulk: what ``POST /api/issues/bulk-status`` sends for 1,000 open issues of projects 1-5 (the UPDATE of
     status, version and updated_at, then the INSERT of their 1,000 ``status_changed`` events);
   - insert: what the CSV import writes for 5,000 issues: copies of existing issues of projects 1-5 (number NULL:
     a trigger assigns it; the statement triggers queue their search documents), their labels and one
     ``created`` event each;
   - index: the search indexer's statement (``issues.search_index.INDEX_SQL``) writing those 5,000 documents;
   - comments: an INSERT of 5,000 comments (copies of existing ones).
   Each index is timed on the workloads that write its table, with the index present and dropped, in
   alternating order, ``--rounds`` rounds after one warm-up pair; its cost is the median over the rounds of
   (with - without) in ms, and in WAL records (EXPLAIN's WAL figures: the same in every round whatever the load,
   so the clearer measure on a shared machine). An index whose absence makes a workload fail (an ON CONFLICT target)
   is "required"; primary keys are not timed (required). ``--group``: indexes also measured dropped together.
The rolled-back writes leave dead entries in the tables and indexes: the script VACUUMs the six tables at the end.

Output: ``bench/results/search/index-cost-1m.json`` and ``.md``, the table printed too. The machine is shared,
so the figures are paired per round and the load average is recorded.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "issues_issue",
    "issues_issue_labels",
    "issues_issuesearch",
    "issues_issuefacettally",
    "issues_issueevent",
    "issues_comment",
)
VISIBLE = [1, 2, 3, 4, 5]
# Indexes no read of reads() uses (see index-cost-1m.md), measured dropped together by default.
GROUP = (
    "issue_status_created_idx,issues_issue_labels_issue_id_e7d458a1,issues_issueevent_actor_id_cd7cea60,"
    "issues_comment_author_id_21f9ca55"
)
# The workloads that write each table (see the module docstring); "index" needs "insert" before it.
WRITES = {
    "issues_issue": ("bulk", "insert"),
    "issues_issuefacettally": ("bulk", "insert"),
    "issues_issueevent": ("bulk", "insert"),
    "issues_issue_labels": ("insert",),
    "issues_issuesearch": ("index",),
    "issues_comment": ("comments",),
}
Work = dict[str, list[tuple[str, list[Any]]]]  # workload -> its statements and their parameters
NEW_ID_BASE = 10_000_000  # copies get id + this: a free range, so labels and events can follow their issue


def reads(db: str) -> dict[str, str]:
    """The everyday reads, name -> API path, for values found in ``db``."""
    with psycopg.connect(dsn(db)) as conn:
        busiest = conn.execute(
            "SELECT assignee_id FROM issues_issue WHERE project_id = ANY(%s) AND assignee_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            [VISIBLE],
        ).fetchone()
        rare = conn.execute(
            "SELECT assignee_id FROM issues_issue WHERE project_id = ANY(%s) AND assignee_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*), 1 LIMIT 1",
            [VISIBLE],
        ).fetchone()
        reporter = conn.execute(
            "SELECT reporter_id FROM issues_issue WHERE project_id = ANY(%s) GROUP BY 1 ORDER BY count(*) DESC "
            "LIMIT 1 OFFSET 100",
            [VISIBLE],
        ).fetchone()
        issue = conn.execute(
            "SELECT id FROM issues_issue WHERE project_id = 1 ORDER BY id LIMIT 1 OFFSET 1000"
        ).fetchone()
        key = conn.execute("SELECT key FROM issues_project WHERE id = 1").fetchone()
        latest = conn.execute("SELECT max(created_at) FROM issues_issue").fetchone()
    assert busiest and rare and reporter and issue and key and latest, "empty database"
    week_ago = (latest[0] - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "list": "/api/issues",
        "status=open": "/api/issues?status=open",
        "assignee=busiest": f"/api/issues?assignee={busiest[0]}",
        "assignee=rare": f"/api/issues?assignee={rare[0]}",
        "assignee=none": "/api/issues?assignee=none",
        "reporter": f"/api/issues?reporter={reporter[0]}",
        "priority+project": f"/api/issues?priority=high&project={key[0]}",
        "label=bug": "/api/issues?label=bug",
        "ordering=-updated_at": "/api/issues?ordering=-updated_at",
        "updated_after 7d": f"/api/issues?updated_after={week_ago}",
        "created_after 7d": f"/api/issues?created_after={week_ago}",
        "q rare word": "/api/issues?q=batchsmith",
        "report latency": "/api/reports/latency",
        "report throughput": "/api/reports/throughput",
        "report top-assignees": "/api/reports/top-assignees",
        "detail": f"/api/issues/{issue[0]}",
        "timeline": f"/api/issues/{issue[0]}/timeline",
    }


def dsn(db: str) -> str:
    return f"{os.environ.get('BENCH_PG', 'postgres://postgres@127.0.0.1:5432')}/{db}"


def setup_django(db: str) -> None:
    os.environ["DATABASE_URL"] = dsn(db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ["DJANGO_LOG_LEVEL"] = "ERROR"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def capture(paths: dict[str, str], conn: psycopg.Connection) -> dict[str, list[str]]:
    """name -> the SQL statements (values inlined) the API sends for that read, the token lookup left out."""
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__username="bench_maintainer")
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    inline = psycopg.ClientCursor(conn)
    captured: dict[str, list[str]] = {}
    for name, path in paths.items():
        client.get(path)  # warm-up: the prepared statements' first run, caches
        seen: list[tuple[str, Any]] = []

        def record(execute: Any, sql: str, params: Any, many: bool, context: Any, seen: list = seen) -> Any:
            seen.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            status = client.get(path).status_code
        assert status == 200, f"{path}: {status}"
        captured[name] = [inline.mogrify(sql, params) for sql, params in seen if "authtoken_token" not in sql]
    return captured


def list_indexes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT i.tablename, i.indexname, pg_relation_size(c.oid), i.indexdef, con.conname "
        "FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname AND c.relkind = 'i' "
        "LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.contype IN ('p', 'u') "
        "WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) ORDER BY i.tablename, i.indexname",
        [list(TABLES)],
    ).fetchall()
    return [
        {"table": t, "name": n, "bytes": size, "definition": d.split(" USING ", 1)[1], "constraint": con}
        for t, n, size, d, con in rows
    ]


def drop(conn: psycopg.Connection, index: dict[str, Any]) -> None:
    if index["constraint"]:  # CASCADE: a primary key takes the foreign keys that point at it along
        conn.execute(f'ALTER TABLE {index["table"]} DROP CONSTRAINT "{index["constraint"]}" CASCADE')
    else:
        conn.execute(f'DROP INDEX "{index["name"]}"')


def plan_indexes(node: dict[str, Any]) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", []):
        found |= plan_indexes(child)
    return found


def explain(conn: psycopg.Connection, statements: list[str], runs: int) -> tuple[float, set[str]]:
    """The read's ms (sum over its statements of the median execution time) and the indexes its plans use."""
    total, used = 0.0, set()
    for sql in statements:
        times = []
        for run in range(runs + 1):
            (plan,) = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").fetchone()  # type: ignore[misc]
            if run:  # the first run warms the cache
                times.append(plan[0]["Execution Time"])
            used |= plan_indexes(plan[0]["Plan"])
        total += statistics.median(times)
    return round(total, 2), used


def read_costs(
    conn: psycopg.Connection, statements: dict[str, list[str]], indexes: list[dict[str, Any]], runs: int
) -> dict[str, Any]:
    base = {name: explain(conn, sqls, runs) for name, sqls in statements.items()}
    for name, (ms, used) in base.items():
        print(f"  {name}: {ms} ms, indexes {sorted(used)}", flush=True)
    served: dict[str, dict[str, Any]] = {}
    for index in indexes:
        served[index["name"]] = {}
        for name, (ms, used) in base.items():
            if index["name"] not in used:
                continue
            with conn.transaction(force_rollback=True):
                drop(conn, index)
                without, _ = explain(conn, statements[name], runs)
            served[index["name"]][name] = {"with_ms": ms, "without_ms": without}
            print(f"  {index['name']}: {name} {ms} -> {without} ms without", flush=True)
    return {"base": {name: {"ms": ms, "indexes": sorted(used)} for name, (ms, used) in base.items()}, "served": served}


def write_statements(conn: psycopg.Connection) -> Work:
    """workload -> its statements, over rows chosen once (spread over the table by md5 of the id)."""
    from issues.search_index import INDEX_SQL

    def ids(sql: str, n: int) -> list[int]:
        found = [row[0] for row in conn.execute(sql, [VISIBLE, n]).fetchall()]
        assert len(found) == n, sql
        return found

    bulk = ids(
        "SELECT id FROM issues_issue WHERE project_id = ANY(%s) AND status = 'open' ORDER BY md5(id::text) LIMIT %s",
        1000,
    )
    copies = ids("SELECT id FROM issues_issue WHERE project_id = ANY(%s) ORDER BY md5(id::text) LIMIT %s", 5000)
    comments = ids(
        "SELECT c.id FROM issues_comment c JOIN issues_issue i ON i.id = c.issue_id WHERE i.project_id = ANY(%s) "
        "ORDER BY md5(c.id::text) LIMIT %s",
        5000,
    )
    assert conn.execute("SELECT max(id) FROM issues_issue").fetchone()[0] < NEW_ID_BASE  # type: ignore[index]
    return {
        "bulk": [
            (
                "UPDATE issues_issue AS i SET status = 'in_progress', version = i.version + 1, updated_at = now() "
                "WHERE i.id = ANY(%s)",
                [bulk],
            ),
            (
                "INSERT INTO issues_issueevent (issue_id, type, timestamp, actor_id, source, details) "
                'SELECT v.id, \'status_changed\', now(), NULL, \'bulk\', \'{"from": "open", "to": "in_progress"}\' '
                "FROM unnest(%s::bigint[]) AS v(id)",
                [bulk],
            ),
        ],
        "insert": [
            (
                "INSERT INTO issues_issue (id, project_id, number, title, description, status, priority, version, "
                "created_at, updated_at, resolved_at, assignee_id, reporter_id) "
                "SELECT id + %s, project_id, NULL, title, description, status, priority, 1, now(), now(), "
                "resolved_at, assignee_id, reporter_id FROM issues_issue WHERE id = ANY(%s)",
                [NEW_ID_BASE, copies],
            ),
            (
                "INSERT INTO issues_issue_labels (issue_id, label_id) "
                "SELECT issue_id + %s, label_id FROM issues_issue_labels WHERE issue_id = ANY(%s)",
                [NEW_ID_BASE, copies],
            ),
            (
                "INSERT INTO issues_issueevent (issue_id, type, timestamp, actor_id, source, details) "
                "SELECT v.id + %s, 'created', now(), NULL, 'import', '{}' FROM unnest(%s::bigint[]) AS v(id)",
                [NEW_ID_BASE, copies],
            ),
        ],
        "index": [(INDEX_SQL, [len(copies)])],
        "comments": [
            (
                "INSERT INTO issues_comment (issue_id, author_id, body, created_at) "
                "SELECT issue_id, author_id, body, now() FROM issues_comment WHERE id = ANY(%s)",
                [comments],
            )
        ],
    }


def run_workloads(
    conn: psycopg.Connection, work: Work, names: tuple[str, ...], dropped: list[dict[str, Any]]
) -> dict[str, tuple[float, int]]:
    """(ms, WAL records) per workload of ``names``, in one transaction rolled back, the ``dropped`` indexes dropped
    first. Each statement runs under EXPLAIN (ANALYZE, WAL, TIMING OFF): its WAL records (one per row written to
    the table or an index, plus page splits; not the AFTER triggers') do not depend on the load of the machine
    nor, unlike WAL bytes, on when the last checkpoint was (full-page images), its time does."""
    order = ("bulk", "insert", "index", "comments")
    todo = {*names, "insert"} if "index" in names else set(names)
    figures = {}
    with conn.transaction(force_rollback=True):
        for index in dropped:
            drop(conn, index)
        for name in (n for n in order if n in todo):
            started, wal = time.perf_counter(), 0
            for sql, params in work[name]:
                explained = conn.execute(f"EXPLAIN (ANALYZE, WAL, TIMING OFF, FORMAT JSON) {sql}", params).fetchone()
                wal += explained[0][0]["Plan"].get("WAL Records", 0)  # type: ignore[index]
            figures[name] = ((time.perf_counter() - started) * 1000, wal)
    return {name: value for name, value in figures.items() if name in names}


def paired(
    conn: psycopg.Connection, work: Work, names: tuple[str, ...], dropped: list[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    """Per workload: median ms with and without ``dropped``, and the medians of the rounds' differences."""
    pairs = []
    for r in range(rounds + 1):  # round 0 warms up and is not counted; the order alternates
        if r % 2:
            without = run_workloads(conn, work, names, dropped)
            with_ = run_workloads(conn, work, names, [])
        else:
            with_ = run_workloads(conn, work, names, [])
            without = run_workloads(conn, work, names, dropped)
        if r:
            pairs.append((with_, without))
    return {
        name: {
            "with_ms": round(statistics.median(w[name][0] for w, _ in pairs), 1),
            "without_ms": round(statistics.median(wo[name][0] for _, wo in pairs), 1),
            "cost_ms": round(statistics.median(w[name][0] - wo[name][0] for w, wo in pairs), 1),
            "cost_ms_rounds": [round(w[name][0] - wo[name][0], 1) for w, wo in pairs],
            "cost_wal_records": statistics.median(w[name][1] - wo[name][1] for w, wo in pairs),
            "with_wal_records": statistics.median(w[name][1] for w, _ in pairs),
        }
        for name in names
    }


def write_costs(conn: psycopg.Connection, indexes: list[dict[str, Any]], rounds: int, work: Work) -> dict[str, Any]:
    costs: dict[str, Any] = {}
    for index in indexes:
        if index["name"].endswith("_pkey"):  # a row's identity, and foreign keys point at it: not optional
            costs[index["name"]] = {"required": "primary key"}
            continue
        try:
            costs[index["name"]] = paired(conn, work, WRITES[index["table"]], [index], rounds)
        except psycopg.Error as error:
            costs[index["name"]] = {"required": str(error).splitlines()[0]}
        print(f"  {index['name']}: {costs[index['name']]}", flush=True)
    return costs


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Index cost at 1M ({results['database']}), {results['started']}",
        "",
        f"Load average at start {results['load_at_start']}, at end {results['load_at_end']} (2 shared cores). "
        f"Reads: median of {results['runs']} EXPLAIN ANALYZE runs, summed over the read's statements. Writes: "
        f"median over {results['rounds']} rounds of (with - without) in ms, each in a rolled-back transaction. "
        "bulk = 1,000 issues' status change (UPDATE + events), insert = 5,000 issues with labels and events, "
        "index = their 5,000 search documents, comments = 5,000 comments. Command: "
        f"`python -m bench.bench_index_cost --db {results['database']} --rounds {results['rounds']}`.",
        "",
        "| index | table | size MB | reads it serves: ms with -> without | write cost: ms (with / without), WAL |",
        "|---|---|---:|---|---|",
    ]
    for index in results["indexes"]:
        served = results["reads"]["served"].get(index["name"], {})
        reads_text = "; ".join(f"{n} {v['with_ms']} -> {v['without_ms']}" for n, v in served.items()) or "none"
        cost = results["writes"].get(index["name"], {})
        if "required" in cost:
            write_text = f"required: {cost['required']}"
        else:
            write_text = "; ".join(
                f"{n} {v['cost_ms']:+} ms ({v['with_ms']} / {v['without_ms']}), WAL records +{v['cost_wal_records']} "
                f"of {v['with_wal_records']}"
                for n, v in cost.items()
            )
        table = index["table"].removeprefix("issues_")
        lines.append(
            f"| {index['name']} ({index['definition']}) | {table} | {index['bytes'] / 2**20:.1f} | {reads_text} "
            f"| {write_text} |"
        )
    if "group" in results:
        lines += ["", f"## Dropped together: {', '.join(results['group']['indexes'])}", ""]
        for n, v in results["group"]["cost"].items():
            lines.append(
                f"- {n}: {v['cost_ms']:+} ms (with {v['with_ms']} / without {v['without_ms']}; rounds "
                f"{v['cost_ms_rounds']}), WAL records +{v['cost_wal_records']} of {v['with_wal_records']}"
            )
    lines += ["", "## Reads (all indexes present)", "", "| read | path | ms | indexes used |", "|---|---|---:|---|"]
    for name, base in results["reads"]["base"].items():
        lines.append(f"| {name} | `{results['paths'][name]}` | {base['ms']} | {', '.join(base['indexes'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="bench_1m_orig")
    parser.add_argument("--rounds", type=int, default=5, help="paired write rounds per index (after a warm-up)")
    parser.add_argument("--runs", type=int, default=3, help="EXPLAIN ANALYZE runs per statement (after a warm-up)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search")
    parser.add_argument("--name", default="index-cost-1m")
    parser.add_argument("--group", default=GROUP, help="comma list of indexes also measured dropped together")
    args = parser.parse_args()
    setup_django(args.db)
    results: dict[str, Any] = {
        "database": args.db,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "rounds": args.rounds,
        "runs": args.runs,
    }
    with psycopg.connect(dsn(args.db), autocommit=True) as conn:
        indexes = list_indexes(conn)
        results["indexes"] = indexes
        results["paths"] = reads(args.db)
        statements = capture(results["paths"], conn)
        results["statements"] = statements
        print("reads:", flush=True)
        results["reads"] = read_costs(conn, statements, indexes, args.runs)
        print("writes:", flush=True)
        work = write_statements(conn)
        results["writes"] = write_costs(conn, indexes, args.rounds, work)
        group = [index for index in indexes if index["name"] in args.group.split(",")]
        if group:
            print("group:", flush=True)
            everything = ("bulk", "insert", "comments")
            results["group"] = {
                "indexes": [index["name"] for index in group],
                "cost": paired(conn, work, everything, group, args.rounds),
            }
            print(f"  {results['group']}", flush=True)
        # The rolled-back writes leave dead rows and index entries behind: clear them for the next run.
        for table in TABLES:
            conn.execute(f"VACUUM {table}")
    results["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = markdown(results)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
