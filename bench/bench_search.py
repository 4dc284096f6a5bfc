"""Search and filtered lists at 10k, 100k and 1M issues (issue 14): the first page through the API, with today's
``ILIKE`` scan timed as SQL beside each search.

    .venv/bin/python -m bench.bench_search [--sizes 10k,100k,1m] [--duration 10] [--rounds 3] [--reuse]
        [--tag before|after] [--explain-at 1m] [--out bench/results/search]

Per size, the database of ``bench/run.py --projects 20`` (``bench_<size>_p20``: created, migrated and filled by
``python -m bench.seed --projects 20 --jobs 3``, timed; ``--reuse`` keeps one whose issue count is right), the
caller ``bench_maintainer`` a maintainer of 5 of the 20 projects, served by gunicorn with 2 sync workers
(``bench.run.Server``) and driven by wrk with ``bench/wrk/bench.lua`` (``bench.run.run_wrk``), 4 connections.

The cases (``CASES``): the unfiltered list, four filtered lists (``status=open``, ``status=open&assignee=X``,
``priority=high&project=P``, ``assignee=none``; X is the caller's busiest assignee, P the visible project with the
most issues after the default one) and five searches, ``q`` = a rare word (under 100 matches at 1M), a phrase,
two words that together match about 1% of the issues, the same with ``label:bug``, and a word in more than 10% of
the issues. The words are chosen by measured frequency on the largest database of the run (``choose_words``:
``ts_stat`` over the issues' search documents), written to ``words.json`` and used at every size.

Each case runs 1 s of warm-up, then ``--rounds`` paired rounds: the unfiltered list for ``--duration`` seconds,
then the case for as long. Its req/s and p50 are the medians over the rounds, and its ratio to the unfiltered list
the median of the paired ratios (the machine's speed drifts over minutes: pairs seconds apart cancel most of it).
Whatever the code does with ``q`` is measured: before issue 14 it is a substring ``ILIKE`` of the whole string
(``q=w1 w2 label:bug`` looks for that text), after it full-text search. Beside each search, the same words through
``ILIKE`` (``title ILIKE '%w%' OR description ILIKE '%w%'`` for each word, the label as an ``EXISTS``) are timed as
the list's two statements (the count, then the first page of 20) on the same database: the median of
``--sql-runs`` executions of each.

Each search runs twice more: while ``--edits-per-second`` issue titles of the caller's projects are edited (each
moves its project's search generation: the results the server keeps are read again after it), and on a second
server with ``SEARCH_CACHE_ENTRIES=0`` (every request counts its matches: a search's first ask).

``--explain-at 1m``: ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement each case's request runs (captured
in-process through Django's test client) and of its ``ILIKE`` statements, in ``<out>/explain-<tag>-1m/``.

Output: ``<out>/results-<tag>.json`` (every figure) and ``<out>/results-<tag>.md`` (the table), printed too.
"""

import argparse
import json
import os
import re
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import requests

from bench.run import (
    BENCH_USER,
    PG_BASE,
    ROOT,
    SIZES,
    USERS,
    Server,
    bench_user,
    ensure_wrk,
    in_projects,
    log,
    manage,
    python,
    query,
    query_count_ok,
    recreate_db,
    run_wrk,
)
from issues.management import demo_text

PROJECTS = 20
MEMBER_OF = 5
LABEL = "bug"  # the most carried label (bench.seed skews labels towards the first of seed_demo.LABELS)
# The searches' targets of the issue, as shares of the table: a rare word under 100 matches at 1M, words that
# together match about 1%, a phrase (aimed at about 0.3%: its words are each more common), a word over 10%.
RARE_MAX = 100
RARE_AIM = 50
PAIR_AIM = 0.01
PHRASE_AIM = 0.003
COMMON_MIN = 0.10
COMMON_AIM = 0.20

# name, what it is (for the table), and whether it is a search (then it has ILIKE SQL beside it).
CASES: list[tuple[str, str, bool]] = [
    ("unfiltered", "unfiltered list", False),
    ("status_open", "`status=open`", False),
    ("status_open_assignee", "`status=open&assignee=X`", False),
    ("priority_high_project", "`priority=high&project=P`", False),
    ("assignee_none", "`assignee=none`", False),
    ("q_rare", "`q=<rare word>`", True),
    ("q_phrase", '`q="<phrase>"`', True),
    ("q_pair", "`q=<two words ~1%>`", True),
    ("q_pair_label", "`q=<two words ~1%> label:bug`", True),
    ("q_common", "`q=<word >10%>`", True),
]
# Multi-word strings of the demo text whose words are not stop words: the phrase candidates.
PHRASES = [
    "null pointer exception",
    "connection reset by peer",
    "race condition",
    "deadlock detected",
    "permission denied",
    "error banner",
    "browser cache",
    "regression test",
    "health check",
    "stack trace",
    "server log",
    "production database",
    "nightly job",
    "missing index",
    "feature flag",
    "worker nodes",
    "corporate VPN",
    "read replicas",
    "blank page",
    "wrong totals",
]


# --- the words -------------------------------------------------------------------------------------------------


def scalar(conn: psycopg.Connection, statement: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    return row[0]


def documents_sql(conn: psycopg.Connection) -> str:
    """A query of every issue's id and search document: the product's own table once it exists (issue 14), else
    the same document computed into a temporary table (as ``issues.models.SEARCH_DOCUMENT_SQL`` defines it)."""
    if scalar(conn, "SELECT to_regclass('issues_issuesearch')") is not None:
        return "SELECT issue_id AS id, document FROM issues_issuesearch"
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS bench_documents AS SELECT id,"
        " setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')"
        " AS document FROM issues_issue"
    )
    return "SELECT id, document FROM bench_documents"


def surface_words(conn: psycopg.Connection) -> dict[str, str]:
    """Lexeme -> a word of the demo text that stems to it (what a person types)."""
    text = " ".join(
        [*demo_text.SUBJECTS, *demo_text.SYMPTOMS, *demo_text.CONTEXTS, *demo_text.SENTENCES, *demo_text.COMPONENTS]
    )
    words = sorted({w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]*[A-Za-z]", text)}, key=len)
    rows = conn.execute(
        "SELECT w, (SELECT array_agg(lexeme) FROM unnest(to_tsvector('english', w))) FROM unnest(%s::text[]) AS w",
        [words],
    ).fetchall()
    surface: dict[str, str] = {}
    for word, lexemes in rows:
        if lexemes and len(lexemes) == 1:
            surface.setdefault(lexemes[0], word)  # the shortest word first
    return surface


def count_matching(conn: psycopg.Connection, documents: str, tsquery: str, params: list[Any]) -> int:
    return scalar(conn, f"SELECT count(*) FROM ({documents}) d WHERE document @@ {tsquery}", params)


def choose_words(db: str) -> dict[str, Any]:
    """The searches' words, chosen by measured frequency on ``db`` (every count here is over the whole table)."""
    started = time.monotonic()
    with psycopg.connect(f"{PG_BASE}/{db}", autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        total = scalar(conn, "SELECT count(*) FROM issues_issue")
        documents = documents_sql(conn)
        surface = surface_words(conn)
        stats = conn.execute(f"SELECT word, ndoc FROM ts_stat($$SELECT document FROM ({documents}) d$$)").fetchall()
        by_word = {surface[lexeme]: ndoc for lexeme, ndoc in stats if lexeme in surface}
        components = {c.lower() for c in demo_text.COMPONENTS}
        rare_pool = [(abs(n - RARE_AIM), w) for w, n in by_word.items() if w in components and n < RARE_MAX]
        rare = min(rare_pool)[1]
        title_words = {w.lower() for phrase in demo_text.SUBJECTS + demo_text.SYMPTOMS for w in phrase.split()}
        common_pool = [(abs(n / total - COMMON_AIM), w) for w, n in by_word.items() if w in title_words]
        common = min(c for c in common_pool if by_word[c[1]] > COMMON_MIN * total)[1]
        # Pairs: words of the titles in 2-25% of the issues, the ten pairs whose product is nearest 1% counted.
        middle = [w for w, n in by_word.items() if w in title_words and 0.02 * total <= n <= 0.25 * total]
        guesses = sorted(
            (abs(by_word[a] * by_word[b] / total**2 - PAIR_AIM), a, b) for a in middle for b in middle if a < b
        )[:10]
        pairs = {
            (a, b): count_matching(conn, documents, "plainto_tsquery('english', %s)", [f"{a} {b}"])
            for _, a, b in guesses
        }
        pair = min(pairs, key=lambda p: abs(pairs[p] / total - PAIR_AIM))
        phrases = {
            phrase: count_matching(conn, documents, "phraseto_tsquery('english', %s)", [phrase]) for phrase in PHRASES
        }
        phrase = min(phrases, key=lambda p: abs(phrases[p] / total - PHRASE_AIM))
        with_label = count_matching(
            conn,
            documents,
            "plainto_tsquery('english', %s) AND EXISTS (SELECT 1 FROM issues_issue_labels il JOIN issues_label l"
            " ON l.id = il.label_id WHERE il.issue_id = d.id AND lower(l.name) = %s)",
            [" ".join(pair), LABEL],
        )
    words = {
        "database": db,
        "issues": total,
        "rare": {"q": rare, "matches": by_word[rare]},
        "phrase": {"q": f'"{phrase}"', "matches": phrases[phrase], "candidates": phrases},
        "pair": {
            "q": " ".join(pair),
            "matches": pairs[pair],
            "each": {w: by_word[w] for w in pair},
            "candidates": {" ".join(p): n for p, n in pairs.items()},
        },
        "pair_label": {"q": f"{' '.join(pair)} label:{LABEL}", "matches": with_label},
        "common": {"q": common, "matches": by_word[common]},
        "seconds": round(time.monotonic() - started, 1),
    }
    return words


# --- the database ----------------------------------------------------------------------------------------------


def prepare(label: str, reuse: bool) -> tuple[str, float | None, str]:
    """The size's database (``bench/run.py --projects 20``), seeded unless reused; its name, seed seconds and the
    seed's output."""
    db = f"bench_{label}_p{PROJECTS}"
    n = SIZES[label]
    if reuse and query_count_ok(db, n, PROJECTS):
        log(f"{label}: reusing {db} (migrated to this code's schema first)")
        manage(db, "migrate", "--noinput", "-v0")
        return db, None, ""
    log(f"{label}: creating {db}, migrating, seeding {n} issues in {PROJECTS} projects")
    recreate_db(db)
    manage(db, "migrate", "--noinput", "-v0")
    started = time.monotonic()
    out = python(
        db, "-m", "bench.seed", "--issues", str(n), "--users", str(USERS[label]), "--projects", str(PROJECTS),
        "--jobs", "3",
    )  # fmt: skip
    seconds = round(time.monotonic() - started, 1)
    log(f"{label}: {out.strip()} (wall {seconds} s)")
    return db, seconds, out.strip()


def filter_values(db: str, visible: list[int]) -> dict[str, Any]:
    """X: the caller's busiest assignee; P: the visible project with the most issues after the default one."""
    seen = in_projects(visible)
    assignee = query(
        db,
        f"SELECT assignee_id FROM issues_issue WHERE assignee_id IS NOT NULL AND {seen} "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )[0][0]
    project = query(
        db,
        f"SELECT p.key FROM issues_issue i JOIN issues_project p ON p.id = i.project_id WHERE {seen} "
        "AND p.id <> (SELECT min(id) FROM issues_project) GROUP BY p.key ORDER BY count(*) DESC LIMIT 1",
    )[0][0]
    return {"assignee": assignee, "project": project}


def case_paths(values: dict[str, Any], words: dict[str, Any]) -> dict[str, str]:
    def q(text: str) -> str:
        return "/api/issues?q=" + quote(text, safe="")

    return {
        "unfiltered": "/api/issues",
        "status_open": "/api/issues?status=open",
        "status_open_assignee": f"/api/issues?status=open&assignee={values['assignee']}",
        "priority_high_project": f"/api/issues?priority=high&project={values['project']}",
        "assignee_none": "/api/issues?assignee=none",
        "q_rare": q(words["rare"]["q"]),
        "q_phrase": q(words["phrase"]["q"]),
        "q_pair": q(words["pair"]["q"]),
        "q_pair_label": q(words["pair_label"]["q"]),
        "q_common": q(words["common"]["q"]),
    }


# --- today's ILIKE, as SQL -------------------------------------------------------------------------------------


def ilike_statements(case: str, words: dict[str, Any], visible: list[int]) -> tuple[str, str, list[Any]]:
    """The list's two statements (count, first page) for the case's words through ILIKE, and their parameters."""
    key = case.removeprefix("q_")
    text = words[key]["q"]
    if key == "phrase":
        terms = [text.strip('"')]
    elif key == "pair_label":
        terms = text.split()[:-1]
    else:
        terms = text.split()
    where = ["project_id = ANY(%s)"]
    params: list[Any] = [visible]
    for term in terms:
        where.append("(title ILIKE %s OR description ILIKE %s)")
        params += [f"%{term}%", f"%{term}%"]
    if key == "pair_label":
        where.append(
            "EXISTS (SELECT 1 FROM issues_issue_labels il JOIN issues_label l ON l.id = il.label_id"
            " WHERE il.issue_id = issues_issue.id AND lower(l.name) = %s)"
        )
        params.append(LABEL)
    condition = " AND ".join(where)
    count = f"SELECT count(*) FROM issues_issue WHERE {condition}"
    page = (
        "SELECT id, project_id, number, title, description, status, priority, assignee_id, reporter_id, version,"
        f" created_at, updated_at, resolved_at FROM issues_issue WHERE {condition}"
        " ORDER BY created_at DESC, id DESC LIMIT 20"
    )
    return count, page, params


def time_ilike(db: str, case: str, words: dict[str, Any], visible: list[int], runs: int) -> dict[str, Any]:
    """Median milliseconds of the count and of the first page (``runs`` executions each, after one unmeasured),
    and the count."""
    count_sql, page_sql, params = ilike_statements(case, words, visible)
    figures: dict[str, Any] = {}
    with psycopg.connect(f"{PG_BASE}/{db}", autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        for name, statement in (("count", count_sql), ("page", page_sql)):
            rows = conn.execute(statement, params).fetchall()
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                conn.execute(statement, params).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            figures[f"{name}_ms"] = round(statistics.median(timings), 1)
            if name == "count":
                figures["matches"] = rows[0][0]
    figures["total_ms"] = round(figures["count_ms"] + figures["page_ms"], 1)
    return figures


# --- one size --------------------------------------------------------------------------------------------------


def api_answer(base: str, path: str, token: str) -> tuple[int, int | None]:
    response = requests.get(base + path, headers={"Authorization": f"Token {token}"}, timeout=600)
    count = response.json().get("count") if response.status_code == 200 else None
    return response.status_code, count


class Edits(threading.Thread):
    """Edits of issue titles in the caller's projects, ``per_second`` of them, while a case runs: each adds or removes
    one trailing space (the words stay the same, so every search finds what it found; but the text changed, so the
    issue's search document is rewritten and its project's search generation moves, and every kept result of a
    search in that project is read again). As plain SQL, through the same triggers as the API's PATCH."""

    EDIT = (
        "UPDATE issues_issue SET title = CASE WHEN right(title, 1) = ' ' THEN rtrim(title) ELSE title || ' ' END"
        " WHERE id = %s"
    )

    def __init__(self, db: str, visible: list[int], per_second: float) -> None:
        super().__init__(daemon=True)
        self.db, self.visible, self.per_second = db, visible, per_second
        self.stopping = threading.Event()
        self.done = 0

    def run(self) -> None:
        with psycopg.connect(f"{PG_BASE}/{self.db}", autocommit=True) as conn:
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM issues_issue WHERE project_id = ANY(%s) ORDER BY random() LIMIT 1000", [self.visible]
            )]  # fmt: skip
            due = time.monotonic()
            while not self.stopping.is_set():
                conn.execute(self.EDIT, [ids[self.done % len(ids)]])
                self.done += 1
                due += 1 / self.per_second
                self.stopping.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> "Edits":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join()


def measure_size(label: str, args: argparse.Namespace, wrk: str, words: dict[str, Any], db: str) -> dict[str, Any]:
    token, visible = bench_user(db, PROJECTS, MEMBER_OF)
    assert visible is not None
    values = filter_values(db, visible)
    paths = case_paths(values, words)
    result: dict[str, Any] = {
        "issues": SIZES[label],
        "database": db,
        "caller_issues": query(db, f"SELECT count(*) FROM issues_issue WHERE {in_projects(visible)}")[0][0],
        "filters": values,
        "cases": {},
    }
    log(
        f"{label}: {BENCH_USER} sees {result['caller_issues']} issues; X, P = {values['assignee']}, {values['project']}"
    )

    def wrk_run(path: str, duration: float) -> dict[str, Any]:
        return run_wrk(
            wrk, server.base, path=path, mode="get", token=token, ids="", duration=duration,
            connections=args.connections,
        )  # fmt: skip

    def rounds_of(path: str) -> dict[str, Any]:
        """1 s of warm-up, then ``--rounds`` paired rounds (the unfiltered list, then ``path``)."""
        wrk_run(path, 1)
        rounds, ratios = [], []
        for _ in range(args.rounds):
            reference = wrk_run(paths["unfiltered"], args.duration)
            run = wrk_run(path, args.duration)
            rounds.append(run)
            ratios.append(run["rps"] / reference["rps"] if reference["rps"] else 0.0)
        return {
            "rps": round(statistics.median(r["rps"] for r in rounds), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
            "requests": sum(r["requests"] for r in rounds),
            "non_2xx": sum(r["non_2xx_3xx"] for r in rounds),
            "ratio_to_unfiltered": round(statistics.median(ratios), 3),
            "rounds": rounds,
        }

    with Server(db, args.port) as server:
        for name, _, search in CASES:
            path = paths[name]
            status, count = api_answer(server.base, path, token)
            figures: dict[str, Any] = {"path": path, "status": status, "count": count}
            if status == 200:
                figures.update(rounds_of(path))
            if search and status == 200 and args.edits_per_second:
                # The same search while titles in the caller's projects are edited: kept results are read again.
                with Edits(db, visible, args.edits_per_second) as edits:
                    started = time.monotonic()
                    figures["with_edits"] = rounds_of(path)
                    figures["with_edits"]["edits_per_second"] = round(edits.done / (time.monotonic() - started), 1)
            if search:
                figures["ilike_sql"] = time_ilike(db, name, words, visible, args.sql_runs)
            result["cases"][name] = figures
            ilike = figures.get("ilike_sql")
            log(
                f"{label}: {name:22s} status {status} count {count}"
                + (
                    f"  {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:8.2f} ms"
                    f"  × unfiltered {figures['ratio_to_unfiltered']:.2f}"
                    if status == 200
                    else ""
                )
                + (f"  | ILIKE SQL {ilike['total_ms']} ms ({ilike['matches']} matches)" if ilike else "")
            )
            edited = figures.get("with_edits")
            if edited:
                log(
                    f"{label}: {name:22s} with {edited['edits_per_second']} edits/s  {edited['rps']:8.1f} req/s"
                    f"  p50 {edited['p50_ms']:8.2f} ms  p99 {edited['p99_ms']:8.2f} ms"
                )
    # The searches again with no result kept (every request counts its matches and picks its first page): what a
    # search costs the first time it is asked, or after every write to the projects it looks in.
    with Server(db, args.port, env={"SEARCH_CACHE_ENTRIES": "0"}) as server:
        for name, _, search in CASES:
            if not search or result["cases"][name]["status"] != 200:
                continue
            figures = rounds_of(paths[name])
            result["cases"][name]["uncached"] = figures
            log(
                f"{label}: {name:22s} uncached  {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:8.2f} ms"
                f"  × unfiltered {figures['ratio_to_unfiltered']:.2f}"
            )
    return result


# --- EXPLAIN at one size ---------------------------------------------------------------------------------------


def explain(db: str, paths: dict[str, str], words: dict[str, Any], visible: list[int], folder: Path) -> None:
    """Run in a child process (``--explain``) with Django set up on ``db``: each case's request once through the
    test client, every statement it runs recorded, then ``EXPLAIN (ANALYZE, BUFFERS)`` of each (with its parameters,
    so the plan is a custom one, where a prepared statement of the product may run a generic one). Nothing is kept
    (``SEARCH_CACHE_ENTRIES=0``): the request recorded after the warm one reads its matches, as a first ask does."""
    import django

    os.environ["SEARCH_CACHE_ENTRIES"] = "0"
    django.setup()
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__username=BENCH_USER)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="127.0.0.1")  # an allowed host
    folder.mkdir(parents=True, exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    statements: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, params))
        return execute(sql, params, many, context)

    for name, path in paths.items():
        client.get(path)  # warm: caches, the connection's prepared statements
        statements.clear()
        with connection.execute_wrapper(record):
            response = client.get(path)
        lines = [f"GET {path} -> {response.status_code}", ""]
        plans = [
            (f"-- statement {i} of the request", sql, params)
            for i, (sql, params) in enumerate(statements, start=1)
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))
        ]
        if name.startswith("q_"):
            count_sql, page_sql, params = ilike_statements(name, words, visible)
            plans += [
                ("-- today's ILIKE: the count", count_sql, params),
                ("-- today's ILIKE: the page", page_sql, params),
            ]
        for title, sql, params in plans:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall()).replace(token.key, "<the caller's token>")
            shown = ["<the caller's token>"] if "authtoken_token" in sql else params  # no secret in the files
            lines += [title, sql, f"-- parameters: {shown!r}", plan, ""]
        (folder / f"{name}.txt").write_text("\n".join(lines))
        print(f"explained {name}: {len(plans)} statements", flush=True)


# --- output ----------------------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    sizes = [label for label in SIZES if label in results["sizes"]]
    words = results["words"]
    lines = [
        f"Run {results['started']} ({results['tag']}), {results['machine']}; load average at start "
        f"{results['load_at_start']}. wrk -t{results['connections']} -c{results['connections']}, "
        f"{results['rounds']} paired rounds of {results['duration']} s (the unfiltered list, then the case); "
        "req/s and p50 are medians over the rounds, × unfiltered the median of the paired ratios. "
        f"Caller: a maintainer of {MEMBER_OF} of {PROJECTS} projects, who sees "
        + ", ".join(f"{results['sizes'][s]['caller_issues']} issues at {s}" for s in sizes)
        + ".",
        "",
        f"Words (chosen on {words['database']}, {words['issues']} issues; matches over the whole table): "
        f"rare `{words['rare']['q']}` {words['rare']['matches']}, phrase `{words['phrase']['q']}` "
        f"{words['phrase']['matches']}, pair `{words['pair']['q']}` {words['pair']['matches']} "
        f"({', '.join(f'{w} {n}' for w, n in words['pair']['each'].items())}), with `label:{LABEL}` "
        f"{words['pair_label']['matches']}, common `{words['common']['q']}` {words['common']['matches']}.",
        "",
        "| case | "
        + " | ".join(f"{s} req/s | {s} p50 ms | {s} × unfiltered | {s} count" for s in sizes)
        + " | 1M p50 ÷ 10k p50 |",
        "|---|" + "---:|---:|---:|---:|" * len(sizes) + "---:|",
    ]
    for name, title, _ in CASES:
        cells = []
        for label in sizes:
            case = results["sizes"][label]["cases"].get(name)
            if not case or "rps" not in case:
                cells += [f"status {case['status']}" if case else "–", "–", "–", "–"]
                continue
            cells += [f"{case['rps']:.0f}", f"{case['p50_ms']:.1f}", f"{case['ratio_to_unfiltered']:.2f}×",
                      str(case["count"])]  # fmt: skip
        small, big = (results["sizes"].get(s, {}).get("cases", {}).get(name, {}) for s in ("10k", "1m"))
        growth = f"{big['p50_ms'] / small['p50_ms']:.2f}×" if "p50_ms" in small and "p50_ms" in big else "–"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {growth} |")
    lines += [
        "",
        "The searches while titles in the caller's projects are edited (`--edits-per-second`; each edit moves its "
        "project's search generation, so the kept results are read again after it), and with no result kept "
        "(`SEARCH_CACHE_ENTRIES=0`, a second server: every request counts its matches and picks its first page, as "
        "the first ask of a search does):",
        "",
        "| case | "
        + " | ".join(f"{s} edits/s | {s} p50 ms | {s} p99 ms | {s} uncached req/s | {s} uncached p50 ms | "
                     f"{s} uncached × unfiltered" for s in sizes)
        + " |",
        "|---|" + "---:|---:|---:|---:|---:|---:|" * len(sizes),
    ]  # fmt: skip
    for name, title, search in CASES:
        if not search:
            continue
        cells = []
        for label in sizes:
            case = results["sizes"][label]["cases"].get(name, {})
            edited, cold = case.get("with_edits"), case.get("uncached")
            none = ["–", "–", "–"]
            cells += (
                [str(edited["edits_per_second"]), f"{edited['p50_ms']:.1f}", f"{edited['p99_ms']:.1f}"]
                if edited
                else none
            )
            cells += (
                [f"{cold['rps']:.0f}", f"{cold['p50_ms']:.1f}", f"{cold['ratio_to_unfiltered']:.2f}×"] if cold else none
            )
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Today's `ILIKE` as SQL on the same databases (median ms of the count + the first page; matches among the "
        "caller's issues):",
        "",
        "| case | " + " | ".join(f"{s} ms (count + page) | {s} matches" for s in sizes) + " |",
        "|---|" + "---:|---:|" * len(sizes),
    ]
    for name, title, search in CASES:
        if not search:
            continue
        cells = []
        for label in sizes:
            sql = results["sizes"][label]["cases"].get(name, {}).get("ilike_sql")
            cells += [f"{sql['total_ms']} ({sql['count_ms']} + {sql['page_ms']})", str(sql["matches"])] if sql else [
                "–", "–"]  # fmt: skip
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    seeds = [f"{s} {results['sizes'][s]['seed_seconds']} s" for s in sizes if results["sizes"][s].get("seed_seconds")]
    if seeds:
        lines += ["", "bench.seed (wall): " + ", ".join(seeds) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma list out of 10k,100k,1m")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds per case (default 3)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sql-runs", type=int, default=3, help="timed executions of each ILIKE statement")
    parser.add_argument("--reuse", action="store_true", help="reuse a database whose issue count is right")
    parser.add_argument("--words", type=Path, help="words.json of an earlier run (default: choose them again)")
    parser.add_argument("--tag", default="run", help="name of this run in the output files (e.g. before, after)")
    parser.add_argument("--explain-at", default="1m", help="size whose statements are EXPLAINed ('' for none)")
    parser.add_argument("--only", type=lambda s: s.split(","), help="measure only these cases")
    parser.add_argument("--port", type=int, default=8795)
    parser.add_argument(
        "--edits-per-second", type=float, default=5, help="title edits/s during each search's third pass (0: none)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search")
    parser.add_argument("--explain", type=Path, help=argparse.SUPPRESS)  # the child process of --explain-at
    args = parser.parse_args()
    if args.explain:
        job = json.loads(args.explain.read_text())
        explain(job["db"], job["paths"], job["words"], job["visible"], Path(job["folder"]))
        return
    labels = args.sizes.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tag": args.tag,
        "machine": f"{os.cpu_count()} CPUs",
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "duration": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "sizes": {},
    }
    started = time.monotonic()
    databases = {}
    for label in labels:
        databases[label] = prepare(label, args.reuse)
    if args.words:
        words = json.loads(args.words.read_text())
    else:
        largest = max(labels, key=SIZES.__getitem__)
        log(f"choosing the words on {databases[largest][0]}")
        words = choose_words(databases[largest][0])
        (args.out / "words.json").write_text(json.dumps(words, indent=2) + "\n")
    results["words"] = words
    log(f"words ({words['seconds']} s): " + json.dumps({k: words[k] for k in ("rare", "pair", "pair_label", "common")}))
    log(f"phrase: {words['phrase']['q']} {words['phrase']['matches']}")
    cases = set(args.only) | {"unfiltered"} if args.only else None
    if cases:
        CASES[:] = [case for case in CASES if case[0] in cases]
    for label in labels:
        db, seed_seconds, seed_out = databases[label]
        size_started = time.monotonic()
        results["sizes"][label] = measure_size(label, args, wrk, words, db)
        results["sizes"][label].update(seed_seconds=seed_seconds, seed_output=seed_out)
        results["sizes"][label]["measure_seconds"] = round(time.monotonic() - size_started, 1)
        (args.out / f"results-{args.tag}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        if label == args.explain_at:
            explain_started = time.monotonic()
            _, visible = bench_user(db, PROJECTS, MEMBER_OF)
            job = args.out / f"explain-{args.tag}.json"
            paths = {name: case["path"] for name, case in results["sizes"][label]["cases"].items()}
            folder = args.out / f"explain-{args.tag}-{label}"
            job.write_text(json.dumps({"db": db, "paths": paths, "words": words, "visible": visible,
                                       "folder": str(folder)}))  # fmt: skip
            print(python(db, "-m", "bench.bench_search", "--explain", str(job)), end="")
            job.unlink()
            log(f"{label}: EXPLAIN (ANALYZE, BUFFERS) in {folder} ({time.monotonic() - explain_started:.0f} s)")
    results["total_seconds"] = round(time.monotonic() - started, 1)
    (args.out / f"results-{args.tag}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    (args.out / f"results-{args.tag}.md").write_text(table)
    print(table)
    log(f"wrote {args.out}/results-{args.tag}.json and .md in {results['total_seconds']} s")


if __name__ == "__main__":
    main()
