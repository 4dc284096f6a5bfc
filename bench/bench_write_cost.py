"""What issue 14 costs the writes: the bulk status of 1,000 issues and the CSV import, the code before the issue
against the code after it, paired in one run on the same data.

    git worktree add /tmp/before14 f2a3fd7 && ln -s "$PWD/.venv" /tmp/before14/.venv   # BEFORE, once
    .venv/bin/python -m bench.bench_write_cost [--before /tmp/before14] [--after .] [--size 100k] [--rounds 5]
        [--import-rows 20000] [--reuse]

Each tree gets its own database, ``bench_write_<before|after>_<size>``: created, migrated by that tree's
``manage.py`` and filled by ``python -m bench.seed --projects 20 --jobs 3`` (the BEFORE tree must carry this tree's
``bench/seed.py`` and ``issues/management/demo_text.py``, copied over its own, so that both load the same issues:
the script compares a fingerprint of the two databases and stops if they differ). Each is served by its own
gunicorn (2 sync workers, ``bench.settings``, cwd and ``PYTHONPATH`` the tree) for ``bench_maintainer``, a
maintainer of 5 of the 20 projects.

After a warm-up (one bulk and a small import on each side, not measured), round r (``--rounds``) runs, for BEFORE
then AFTER (AFTER first on odd rounds, so that neither always goes first):
- bulk: five ``POST /api/issues/bulk-status`` of the same 1,000 open issues on each side (the same ids on both
  sides: the two databases received the same writes), alternating ``closed`` / ``in_progress`` so that every
  request changes all 1,000 rows; the median ms. The two sides' requests are interleaved (BEFORE, AFTER, AFTER,
  BEFORE, ...: each pair a fraction of a second apart), since on a shared machine the load swings within seconds;
- import: ``POST /api/issues/import`` of a CSV of ``--import-rows`` rows with demo_text's titles and descriptions
  (the same file on both sides), ms end to end; on AFTER also the time until its search documents are written
  (``issues_issuesearchpending`` empty again: the indexer runs after the commit, outside the request).
Ratios are BEFORE ms ÷ AFTER ms (the target: AFTER at no less than 0.85× BEFORE's throughput), the median of the
rounds' pairs; for the bulk also ``bulk_pair_ratio``, the median over every interleaved pair of requests. Output:
``bench/results/search/write-cost-<size>.json`` and ``.md``, printed too.
"""

import argparse
import csv
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.run import PY, SIZES, USERS, Server, django_env, in_projects, log, query, recreate_db
from issues.management import demo_text

PROJECTS = 20
MEMBER_OF = 5
BULK_REQUESTS = 5
FINGERPRINT_SQL = """
SELECT count(*), md5(string_agg(concat_ws('|', id, project_id, number, title, description, status, priority,
                                         assignee_id, reporter_id, version), E'\\n' ORDER BY id))
FROM issues_issue
"""


class Tree:
    """A checkout of the code: its manage.py, its bench.seed and its server."""

    def __init__(self, name: str, root: Path, size: str) -> None:
        self.name, self.root = name, root.resolve()
        self.db = f"bench_write_{name}_{size}"

    def env(self) -> dict[str, str]:
        return {**django_env(self.db), "PYTHONPATH": str(self.root)}

    def run(self, *args: str) -> str:
        done = subprocess.run([PY, *args], cwd=self.root, env=self.env(), check=False, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{self.name}: {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout


class TreeServer(Server):
    """``bench.run.Server`` serving ``tree``'s code (cwd and ``PYTHONPATH`` the tree)."""

    def __init__(self, tree: Tree, port: int) -> None:
        super().__init__(tree.db, port)
        self.tree = tree

    def __enter__(self) -> "TreeServer":
        gunicorn = str(Path(PY).parent / "gunicorn")
        cmd = [gunicorn, "issue_tracker.wsgi:application", "--workers=2", f"--bind=127.0.0.1:{self.port}",
               "--timeout=600", "--log-level=warning"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=self.tree.root, env=self.tree.env(), start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__()
        sys.exit(f"{self.tree.name}: gunicorn did not become healthy within 30 s")


def prepare(tree: Tree, size: str, reuse: bool) -> dict[str, Any]:
    n = SIZES[size]
    seeded: dict[str, Any] = {}
    try:
        exists = query(tree.db, "SELECT count(*) FROM issues_issue")[0][0] >= n
    except Exception:
        exists = False
    if not (reuse and exists):
        log(f"{tree.name}: creating {tree.db} with {tree.root}'s code, seeding {n} issues")
        recreate_db(tree.db)
        tree.run("manage.py", "migrate", "--noinput", "-v0")
        started = time.monotonic()
        out = tree.run("-m", "bench.seed", "--issues", str(n), "--users", str(USERS[size]), "--projects",
                       str(PROJECTS), "--jobs", "3")  # fmt: skip
        seeded = {"seed_seconds": round(time.monotonic() - started, 1), "seed_output": out.strip()}
        log(f"{tree.name}: {out.strip()}")
    else:  # reused: brought to its tree's schema first (a migration may have come since)
        tree.run("manage.py", "migrate", "--noinput", "-v0")
    keys = [key for (key,) in query(tree.db, "SELECT key FROM issues_project ORDER BY id LIMIT %s", [MEMBER_OF])]
    token = ""
    for key in keys:
        token = tree.run("manage.py", "create_api_user", "bench_maintainer", "--role", "maintainer", "--project", key)
    return {"token": token.strip().splitlines()[-1], **seeded}


def import_file(rows: int, user_ids: list[int], seed: int) -> bytes:
    """A CSV of ``rows`` issues with demo_text's titles and descriptions (as a tracker's export would carry)."""
    rng = random.Random(seed)

    def draw(k: int) -> float:
        return rng.random()

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["title", "description", "status", "priority", "assignee", "labels"])
    for i in range(rows):
        writer.writerow([
            demo_text.title(draw),
            demo_text.description(draw),
            ("open", "open", "in_progress", "resolved", "closed")[i % 5],
            ("low", "medium", "medium", "high", "critical")[i % 5],
            user_ids[i % len(user_ids)] if i % 7 else "",
            ("bug", "feature;ui", "backend", "", "docs;api", "performance")[i % 6],
        ])  # fmt: skip
    return out.getvalue().encode()


def bulk(sides: list[tuple[str, str, str]], ids: list[int]) -> dict[str, dict[str, Any]]:
    """BULK_REQUESTS bulks on each of ``sides`` ((name, base, token)), interleaved request by request, the order
    of each pair alternating; per side the median ms and every request's."""
    timings: dict[str, list[float]] = {name: [] for name, _, _ in sides}
    for i in range(BULK_REQUESTS):
        for name, base, token in sides if i % 2 == 0 else sides[::-1]:
            started = time.perf_counter()
            response = requests.post(
                f"{base}/api/issues/bulk-status",
                json={"ids": ids, "status": "closed" if i % 2 == 0 else "in_progress"},
                headers={"Authorization": f"Token {token}"},
                timeout=600,
            )
            timings[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["updated"] == len(ids), response.text[:300]
    return {
        name: {"median_ms": round(statistics.median(ms), 1), "ms": [round(t, 1) for t in ms]}
        for name, ms in timings.items()
    }


def pending(db: str) -> int | None:
    if query(db, "SELECT to_regclass('issues_issuesearchpending')")[0][0] is None:
        return None
    return query(db, "SELECT count(*) FROM issues_issuesearchpending")[0][0]


def import_once(base: str, token: str, db: str, data: bytes, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    response = requests.post(
        f"{base}/api/issues/import",
        data=data,
        headers={"Authorization": f"Token {token}", "Content-Type": "text/csv"},
        timeout=1200,
    )
    answered = time.perf_counter() - started
    assert response.status_code == 200 and response.json()["created"] == rows, response.text[:300]
    figures: dict[str, Any] = {"ms": round(answered * 1000, 1), "rows_per_s": round(rows / answered, 1)}
    if pending(db) is not None:  # AFTER: wait for the indexer that runs after the commit
        while pending(db):
            time.sleep(0.05)
        indexed = time.perf_counter() - started
        figures.update(indexed_ms=round(indexed * 1000, 1), indexed_rows_per_s=round(rows / indexed, 1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, default=Path("/tmp/before14"))
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--size", choices=list(SIZES), default="100k")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--import-rows", type=int, default=20_000)
    parser.add_argument("--reuse", action="store_true", help="reuse the two databases if they are filled")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "search")
    args = parser.parse_args()
    trees = [Tree("before", args.before, args.size), Tree("after", args.after, args.size)]
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "size": args.size,
        "trees": {t.name: str(t.root) for t in trees},
        "import_rows": args.import_rows,
        "rounds": [],
    }
    setup = {tree.name: prepare(tree, args.size, args.reuse) for tree in trees}
    results["seed"] = {name: {k: v for k, v in s.items() if k != "token"} for name, s in setup.items()}
    prints = {tree.name: query(tree.db, FINGERPRINT_SQL)[0] for tree in trees}
    if prints["before"] != prints["after"]:
        sys.exit(f"the two databases hold different issues: {prints} (is this tree's bench/seed.py in BEFORE?)")
    log(f"same issues on both sides: {prints['before'][0]} issues, md5 {prints['before'][1]}")
    first = trees[0].db
    visible = [pk for (pk,) in query(first, "SELECT id FROM issues_project ORDER BY id LIMIT %s", [MEMBER_OF])]
    user_ids = [pk for (pk,) in query(first, "SELECT id FROM auth_user WHERE username LIKE 'demo_user_%%' LIMIT 50")]
    data = import_file(args.import_rows, user_ids, seed=1)
    log(f"import file: {args.import_rows} rows, {len(data) / 1e6:.1f} MB")
    servers = {tree.name: TreeServer(tree, 8801 + i) for i, tree in enumerate(trees)}
    for server in servers.values():
        server.__enter__()
    try:
        warm = [pk for (pk,) in query(first, f"SELECT id FROM issues_issue WHERE status = 'open' AND "
                                             f"{in_projects(visible)} ORDER BY id LIMIT 1000")]  # fmt: skip
        sides = [(tree.name, servers[tree.name].base, setup[tree.name]["token"]) for tree in trees]
        bulk(sides, warm)  # not measured: the workers' first requests, caches, prepared statements
        for tree in trees:
            base, token = servers[tree.name].base, setup[tree.name]["token"]
            import_once(base, token, tree.db, import_file(500, user_ids, seed=2), 500)
        for r in range(args.rounds):
            ids = [pk for (pk,) in query(first, f"SELECT id FROM issues_issue WHERE status = 'open' AND "
                                                f"{in_projects(visible)} ORDER BY random() LIMIT 1000")]  # fmt: skip
            figures: dict[str, Any] = {"round": r + 1, "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}
            bulks = bulk(sides if r % 2 == 0 else sides[::-1], ids)
            for tree in trees if r % 2 == 0 else trees[::-1]:
                base, token = servers[tree.name].base, setup[tree.name]["token"]
                figures[tree.name] = {
                    "bulk": bulks[tree.name],
                    "import": import_once(base, token, tree.db, data, args.import_rows),
                }
            b, a = figures["before"], figures["after"]
            figures["bulk_ratio"] = round(b["bulk"]["median_ms"] / a["bulk"]["median_ms"], 3)
            figures["import_ratio"] = round(b["import"]["ms"] / a["import"]["ms"], 3)
            if "indexed_ms" in a["import"]:
                figures["import_indexed_ratio"] = round(b["import"]["ms"] / a["import"]["indexed_ms"], 3)
            results["rounds"].append(figures)
            log(
                f"round {r + 1} (load {figures['loadavg']}): bulk {b['bulk']['median_ms']} / {a['bulk']['median_ms']}"
                f" ms (ratio {figures['bulk_ratio']}); import {b['import']['ms']} / {a['import']['ms']} ms"
                f" (ratio {figures['import_ratio']})"
                + (f"; AFTER indexed after {a['import']['indexed_ms']} ms" if "indexed_ms" in a["import"] else "")
            )
            prints = {tree.name: query(tree.db, FINGERPRINT_SQL)[0][0] for tree in trees}
            assert prints["before"] == prints["after"], prints  # both received the same writes
    finally:
        for server in servers.values():
            server.__exit__()
    rounds = results["rounds"]
    summary = {
        key: round(statistics.median(r[key] for r in rounds), 3)
        for key in ("bulk_ratio", "import_ratio", "import_indexed_ratio")
        if all(key in r for r in rounds)
    }
    pairs = [b / a for r in rounds for b, a in zip(r["before"]["bulk"]["ms"], r["after"]["bulk"]["ms"], strict=True)]
    summary["bulk_pair_ratio"] = round(statistics.median(pairs), 3)
    for side in ("before", "after"):
        summary[f"{side}_bulk_median_ms"] = statistics.median(r[side]["bulk"]["median_ms"] for r in rounds)
        summary[f"{side}_import_median_ms"] = statistics.median(r[side]["import"]["ms"] for r in rounds)
    if all("indexed_ms" in r["after"]["import"] for r in rounds):
        summary["after_import_indexed_median_ms"] = statistics.median(
            r["after"]["import"]["indexed_ms"] for r in rounds
        )
    results["summary"] = summary
    results["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"write-cost-{args.size}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"Run {results['started']}, {args.size} issues in {PROJECTS} projects, load average {results['load_at_start']}"
        f" → {results['load_at_end']}. BEFORE = {args.before}, AFTER = {args.after}. Bulk: median ms of "
        f"{BULK_REQUESTS} requests of 1,000 items; import: {args.import_rows} rows, ms end to end (AFTER: and until "
        "its search documents are written). Ratio = BEFORE ms ÷ AFTER ms (≥ 0.85 is the target).",
        "",
        "| round | bulk BEFORE | bulk AFTER | ratio | import BEFORE | import AFTER | ratio | AFTER indexed | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['round']} | {b['bulk']['median_ms']} | {a['bulk']['median_ms']} | {r['bulk_ratio']} | "
            f"{b['import']['ms']} | {a['import']['ms']} | {r['import_ratio']} | "
            f"{a['import'].get('indexed_ms', '–')} | {r.get('import_indexed_ratio', '–')} |"
        )
    lines += ["", "Medians: " + ", ".join(f"{k} {v}" for k, v in summary.items())]
    table = "\n".join(lines) + "\n"
    (args.out / f"write-cost-{args.size}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
