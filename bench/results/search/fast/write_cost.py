"""Paired write cost of the search triggers before/after migration 0019 (issue 14 helper S), as SQL on two copies
of the 1M database: ``search_wc_before`` (schema at 0017) and ``bench_1m_p20`` (0019). Each round, on each
database in turn, inside a transaction that is rolled back:
  bulk:   one INSERT ... SELECT of 20,000 issues (queued by the insert trigger), then the indexer's statement
          (search_index.INDEX_SQL of that code) writing their 20,000 documents;
  inline: 200 INSERT ... SELECT statements of 100 issues (documents written by the insert trigger itself).
Run: .venv/bin/python bench/results/search/fast/write_cost.py [rounds]"""

import re
import statistics
import subprocess
import sys
import time

import psycopg

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
DOC = (
    "setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.description, '')), 'B')"
)


def index_sql(source: str) -> str:
    found = re.search(r'INDEX_SQL = f"""(.*?)"""', source, re.S)
    assert found is not None
    sql = found.group(1)
    return sql.replace("{SEARCH_DOCUMENT_SQL}", DOC)


BEFORE = index_sql(
    subprocess.run(
        ["git", "show", "fda5f87:issues/search_index.py"],
        capture_output=True,
        text=True,
        cwd="/tmp/wt-search",
        check=True,
    ).stdout
)
with open("/tmp/wt-search/issues/search_index.py") as file:
    AFTER = index_sql(file.read())
DBS = {"before": ("search_wc_before", BEFORE), "after": ("bench_1m_p20", AFTER)}
COLUMNS = "project_id, title, description, status, priority, version, created_at, updated_at, assignee_id, reporter_id"
SOURCE = (
    "SELECT project_id, title, description, status, priority, 1, now(), now(), assignee_id, reporter_id"
    " FROM issues_issue"
)
INSERT = f"INSERT INTO issues_issue ({COLUMNS}) {SOURCE} WHERE id > %s AND id <= %s"


def one(db: str, indexer: str, offset: int) -> dict[str, float]:
    out = {}
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}") as conn:
        conn.execute("SET statement_timeout = 0")
        t = time.perf_counter()
        conn.execute(INSERT, [offset, offset + 20000])
        out["bulk_insert"] = time.perf_counter() - t
        t = time.perf_counter()
        row = conn.execute(indexer, [20000]).fetchone()
        assert row is not None
        taken, written = row
        out["bulk_index"] = time.perf_counter() - t
        assert taken == written == 20000, (taken, written)
        conn.rollback()
        t = time.perf_counter()
        for k in range(200):
            start = offset + 100 * k
            conn.execute(INSERT, [start, start + 100])
        out["inline_200x100"] = time.perf_counter() - t
        conn.rollback()
    return out


results: dict[str, list[dict[str, float]]] = {side: [] for side in DBS}
for r in range(ROUNDS):
    offset = 100000 + 20000 * r
    order = list(DBS) if r % 2 == 0 else list(reversed(DBS))
    for side in order:
        results[side].append(one(DBS[side][0], DBS[side][1], offset))
        print(side, r, {k: round(v * 1000) for k, v in results[side][-1].items()}, flush=True)
print("median ms over", ROUNDS, "rounds:")
for key in results["before"][0]:
    b = statistics.median(x[key] for x in results["before"]) * 1000
    a = statistics.median(x[key] for x in results["after"]) * 1000
    ratios = [x[key] / y[key] for x, y in zip(results["after"], results["before"], strict=True)]
    ratio = statistics.median(ratios)
    print(f"  {key:16s} before {b:8.0f}  after {a:8.0f}  after/before (median of paired ratios) {ratio:.2f}")
