"""``manage.py seed_demo --issues N --users U [--reset] [--seed S] [--jobs J]``: fill the tracker with demo data.

On PostgreSQL everything is set-based (``INSERT … SELECT`` over ``generate_series``), in one transaction by
default; with ``--jobs 3`` a big load writes the issues first and then the labels, events and comments from
three connections at once (undone together if one fails), which is how 1,000,000 issues fit in 2 minutes.
Every per-issue choice comes from a hash of the issue id (``pg_temp.r(id, k)``), so the issues, labels,
comments and events are derived independently yet agree with each other. Other
databases (SQLite) get the same shape through ``bulk_create``, slower, for small N.

The data, and the invariants it keeps (``tests/test_seed_demo.py`` checks them):
- ``U`` users ``demo_user_<n>`` (role member, unusable password). Assignees are skewed: 12% of issues
  are unassigned, the rest go to user ``floor(U * r**3)``, so a few users carry most issues.
- issues created over the past year, in id order; priority low 20% / medium 50% / high 22% / critical 8%.
  Resolution takes 1 hour to 8 weeks (``1h + 8w * r**2``); an issue is resolved or closed only if that
  time (plus 20%) has passed, so recent issues are open or in progress, as in a real tracker.
- status history: ``open → in_progress → resolved → closed``; each step is one ``status_changed``
  event, so ``version = 1 + number of status events`` (open 1, in progress 2, resolved 3, closed 4).
  ``resolved_at`` is set exactly when the status is resolved or closed (the time of ``→ resolved``).
- every issue has one ``created`` event at ``created_at``; every comment one ``commented`` event.
  Comments fall between ``created_at`` and ``updated_at``; ``updated_at`` is the time of the last
  event. 0–3 comments per issue (a few "hot" issues have 120), 0–3 labels out of 12 (skewed).
- ids are explicit on insert; the sequences are moved past them afterwards.
"""

import math
import random
import time
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from issues.events import comment_excerpt
from issues.models import Comment, EventType, Issue, IssueEvent, Label, Source

LABELS = [
    ("bug", "#d73a4a"),
    ("feature", "#a2eeef"),
    ("ui", "#1d76db"),
    ("backend", "#5319e7"),
    ("docs", "#0075ca"),
    ("performance", "#fbca04"),
    ("security", "#b60205"),
    ("regression", "#e99695"),
    ("good-first-issue", "#7057ff"),
    ("needs-triage", "#ededed"),
    ("api", "#0e8a16"),
    ("mobile", "#c5def5"),
]
TITLES = [
    "Login fails with valid credentials",
    "Crash when saving a draft",
    "Export times out on large projects",
    "Typo in the settings page",
    "Search ignores accented characters",
    "Slow dashboard for big teams",
    "Notification emails sent twice",
    "Dark mode contrast too low",
    "Attachment upload stalls at 99%",
    "Timezone shown wrong in reports",
    "API returns 500 on empty filter",
    "Add keyboard shortcuts to the board",
    "Session expires too early",
    "Broken link in the footer",
    "Pagination skips an item",
    "Memory grows during import",
]
DESCRIPTIONS = [
    "",
    "Steps to reproduce: open the page, click the button, wait.",
    "Seen by several customers since the last release.",
    "Happens only on Safari; Chrome and Firefox are fine.",
    "Expected: the change is saved. Actual: an error banner appears.",
    "Low impact but annoying; a workaround exists (reload the page).",
]
COMMENTS = [
    "Reproduced on the staging server.",
    "I can take this one.",
    "Is this still happening after the last deploy?",
    "Root cause found, fix coming.",
    "Added a test that covers it.",
    "Waiting for feedback from the reporter.",
    "Duplicate of an older report, linking them.",
    "Works for me now, thanks!",
]
FIRST_NAMES = ["Ada", "Linus", "Grace", "Ken", "Barbara", "Guido", "Margaret", "Dennis", "Frances", "Edsger"]
LAST_NAMES = ["Lovelace", "Torvalds", "Hopper", "Thompson", "Liskov", "Rossum", "Hamilton", "Ritchie", "Allen"]

SPAN_SECONDS = 365 * 86400  # issues are created over the past year
HOT_ISSUE_SHARE = 0.0005  # issues with HOT_COMMENTS comments (more than the detail shows)
HOT_COMMENTS = 120
USER_PREFIX = "demo_user_"


class _Timed:
    """A cursor wrapper that reports each statement's duration (``-v 2``)."""

    def __init__(self, cursor: Any, out: Any) -> None:
        self.cursor, self.out = cursor, out

    def execute(self, sql: str, params: Any = None) -> None:
        started = time.monotonic()
        self.cursor.execute(sql, params)
        if self.out is not None:
            first = " ".join(sql.split())[:70]
            self.out.write(f"  {time.monotonic() - started:6.2f}s  {self.cursor.rowcount:>9}  {first}")

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


class Command(BaseCommand):
    help = "Fill the database with realistic demo issues, labels, comments and timeline events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issues", type=int, default=1000, help="Number of issues to add (default 1000).")
        parser.add_argument("--users", type=int, default=50, help="Number of demo users (default 50).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the pseudo-random choices (default 1).")
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="PostgreSQL connections writing at once for big loads (default 1: one transaction for all).",
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete every issue, comment and event first (labels and users stay)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        n_issues, n_users, seed = options["issues"], options["users"], options["seed"]
        self.verbosity = options["verbosity"]
        if n_issues < 0 or n_users < 1:
            raise CommandError("--issues must be >= 0 and --users >= 1.")
        started = time.monotonic()
        # --jobs N > 1 on PostgreSQL: after the issues, the labels, events and comments are written by N
        # connections at once (one transaction each, undone together if one fails), and the indexes rebuilt
        # in parallel. Not possible inside an outer transaction (other connections could not see the issues).
        parallel = (
            connection.vendor == "postgresql"
            and options["jobs"] > 1
            and not connection.in_atomic_block
            and n_issues >= BIG_LOAD
        )
        with transaction.atomic():
            if options["reset"]:
                self._reset()
            user_ids = self._ensure_users(n_users)
            label_ids = self._ensure_labels()
            offset = Issue.objects.aggregate(m=Max("id"))["m"] or 0
            now = timezone.now().replace(microsecond=0)
            plan = None
            if connection.vendor == "postgresql":
                plan = _PostgresPlan(self, n_issues, offset, user_ids, label_ids, now, seed)
                if not parallel:
                    counts = plan.run_in_this_transaction()
            else:
                counts = self._seed_python(n_issues, offset, user_ids, label_ids, now, seed)
        if parallel and plan is not None:
            counts = plan.run_in_parallel(options["jobs"])
        if connection.vendor == "postgresql":
            # Fresh statistics for the planner, and (outside a transaction) the visibility map that
            # index-only scans such as the list's COUNT rely on.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            with connection.cursor() as cursor:
                for model in (Issue, Issue.labels.through, Comment, IssueEvent):
                    cursor.execute(f'{command} "{model._meta.db_table}"')
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Seeded {counts['issues']} issues, {counts['comments']} comments, {counts['events']} events, "
            f"{counts['labels']} issue labels, {len(user_ids)} users in {elapsed:.1f}s ({connection.vendor})."
        )

    # --- shared steps -------------------------------------------------------------------------------

    def _reset(self) -> None:
        if connection.vendor == "postgresql":
            tables = ", ".join(f'"{m._meta.db_table}"' for m in (IssueEvent, Comment, Issue.labels.through, Issue))
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")
        else:
            IssueEvent.objects.all().delete()
            Comment.objects.all().delete()
            Issue.objects.all().delete()

    def _ensure_users(self, n_users: int) -> list[int]:
        user_model = get_user_model()
        now = timezone.now()
        existing = set(user_model.objects.filter(username__startswith=USER_PREFIX).values_list("username", flat=True))
        new = []
        for i in range(1, n_users + 1):
            username = f"{USER_PREFIX}{i}"
            if username not in existing:
                user = user_model(
                    username=username,
                    first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                    last_name=LAST_NAMES[i % len(LAST_NAMES)],
                    email=f"{username}@example.com",
                    date_joined=now,
                )
                user.set_unusable_password()
                new.append(user)
        user_model.objects.bulk_create(new, batch_size=1000)
        users = list(
            user_model.objects.filter(username__in=[f"{USER_PREFIX}{i}" for i in range(1, n_users + 1)])
            .order_by("id")
            .values_list("id", flat=True)
        )
        member = Group.objects.filter(name="member").first()
        if member is not None:
            through = user_model.groups.through
            through.objects.bulk_create(
                [through(user_id=uid, group_id=member.pk) for uid in users], ignore_conflicts=True, batch_size=1000
            )
        return users

    def _ensure_labels(self) -> list[int]:
        from django.db.models.functions import Lower

        have = {name.lower() for name in Label.objects.values_list("name", flat=True)}
        Label.objects.bulk_create([Label(name=n, color=c) for n, c in LABELS if n not in have])
        by_name = dict(Label.objects.annotate(lname=Lower("name")).values_list("lname", "id"))
        return [by_name[name] for name, _ in LABELS]

    # --- other databases: the same data through bulk_create ----------------------------------------

    def _seed_python(
        self, n: int, offset: int, user_ids: list[int], label_ids: list[int], now: datetime, seed: int
    ) -> dict[str, int]:
        rng = random.Random(seed * 1000003 + offset)
        nu, nl = len(user_ids), len(label_ids)
        issues: list[Issue] = []
        label_links = []
        plans: list[tuple[Issue, int, timedelta]] = []
        for g in range(1, n + 1):
            issue_id = offset + g
            created = (
                now
                - timedelta(seconds=SPAN_SECONDS)
                + timedelta(seconds=SPAN_SECONDS * (g - 0.5 + 0.4 * (rng.random() - 0.5)) / n)
            )
            d = timedelta(seconds=3600 + 56 * 86400 * rng.random() ** 2)
            rs = rng.random()
            if created + d * 1.2 > now:
                status = "open" if rs < 0.6 else "in_progress"
            else:
                status = "open" if rs < 0.25 else "in_progress" if rs < 0.37 else "resolved" if rs < 0.6 else "closed"
            ncom = HOT_COMMENTS if rng.random() < HOT_ISSUE_SHARE else math.floor(4 * rng.random() ** 2)
            rp = rng.random()
            priority = "low" if rp < 0.2 else "medium" if rp < 0.7 else "high" if rp < 0.92 else "critical"
            assignee = None if rng.random() < 0.12 else user_ids[math.floor(nu * rng.random() ** 3)]
            reporter = user_ids[math.floor(nu * rng.random())]
            version = {"open": 1, "in_progress": 2, "resolved": 3, "closed": 4}[status]
            resolved_at = created + d if status in ("resolved", "closed") else None
            if status == "open":
                updated = created if ncom == 0 else created + (now - created) * 0.5 * rng.random()
            elif status == "in_progress":
                updated = created + min(d * 0.25, (now - created) * 0.5)
            elif status == "resolved":
                updated = created + d
            else:
                updated = created + d * 1.1
            issue = Issue(
                id=issue_id,
                title=f"{TITLES[math.floor(rng.random() * len(TITLES))]} (#{issue_id})",
                description=DESCRIPTIONS[math.floor(rng.random() * len(DESCRIPTIONS))],
                status=status,
                priority=priority,
                assignee_id=assignee,
                reporter_id=reporter,
                version=version,
                created_at=created,
                updated_at=updated,
                resolved_at=resolved_at,
            )
            issues.append(issue)
            first = math.floor(nl * rng.random() ** 2)
            for k in range(math.floor(3.5 * rng.random())):
                label_links.append(Issue.labels.through(issue_id=issue_id, label_id=label_ids[(first + k) % nl]))
            plans.append((issue, ncom, d))
        Issue.objects.bulk_create(issues, batch_size=500)
        Issue.labels.through.objects.bulk_create(label_links, batch_size=500)

        events: list[IssueEvent] = []
        comments: list[Comment] = []
        for issue, ncom, _ in plans:
            actor = issue.assignee_id or issue.reporter_id
            events.append(
                IssueEvent(
                    issue_id=issue.id,
                    type=EventType.CREATED,
                    timestamp=issue.created_at,
                    actor_id=issue.reporter_id,
                    source=Source.API,
                    details={},
                )
            )
            steps = [
                ("open", "in_progress", issue.updated_at if issue.status == "in_progress" else None),
                ("in_progress", "resolved", issue.resolved_at),
                ("resolved", "closed", issue.updated_at),
            ][: issue.version - 1]
            for frm, to, ts in steps:
                if ts is None:  # open → in_progress on an issue that went on to be resolved
                    ts = issue.created_at + (issue.resolved_at - issue.created_at) * 0.25
                events.append(
                    IssueEvent(
                        issue_id=issue.id,
                        type=EventType.STATUS_CHANGED,
                        timestamp=ts,
                        actor_id=actor,
                        source=Source.API,
                        details={"from": frm, "to": to},
                    )
                )
            divisor = ncom + (0 if issue.status == "open" else 1)
            for k in range(1, ncom + 1):
                comments.append(
                    Comment(
                        issue_id=issue.id,
                        author_id=user_ids[math.floor(nu * rng.random() ** 2)],
                        body=COMMENTS[math.floor(rng.random() * len(COMMENTS))],
                        created_at=issue.created_at + (issue.updated_at - issue.created_at) * k / divisor,
                    )
                )
        Comment.objects.bulk_create(comments, batch_size=500)  # returns the ids on SQLite and PostgreSQL
        for comment in comments:
            events.append(
                IssueEvent(
                    issue_id=comment.issue_id,
                    type=EventType.COMMENTED,
                    timestamp=comment.created_at,
                    actor_id=comment.author_id,
                    source=Source.API,
                    details={"comment_id": comment.pk, "excerpt": comment_excerpt(comment.body)},
                )
            )
        IssueEvent.objects.bulk_create(events, batch_size=500)
        self._reset_sequences()
        return {"issues": len(issues), "comments": len(comments), "events": len(events), "labels": len(label_links)}

    def _reset_sequences(self) -> None:
        """Move the id sequences past the explicit ids (a no-op where ids come from MAX(id), as in SQLite)."""
        from django.core.management.color import no_style

        statements = connection.ops.sequence_reset_sql(no_style(), [Issue, Comment, IssueEvent])
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


# --- PostgreSQL: set-based -----------------------------------------------------------------------------------
# Every per-issue choice is pg_temp.r(id, k), a uniform number in [0, 1) hashed from the issue id, so each
# statement can derive what it needs from the issues table and the statements agree with each other.
# ``{issue_t}``-style fields are table names (str.format); ``%(x)s`` are query parameters.

BIG_LOAD = 20_000  # from this many issues on (and at least as many as exist), indexes are rebuilt at the end

ISSUES_SQL = """
WITH base AS (
    SELECT g + %(offset)s AS id,
           %(now)s::timestamptz - make_interval(secs => %(span)s)
             + make_interval(secs => %(span)s * (g - 0.5 + 0.4 * (pg_temp.r(g + %(offset)s, 0) - 0.5))
                                    / %(n)s) AS created_at,
           make_interval(secs => 3600 + 56 * 86400 * pg_temp.r(g + %(offset)s, 1) ^ 2) AS d,
           pg_temp.r(g + %(offset)s, 2) AS rs
    FROM generate_series(1, %(n)s) AS g
), st AS (
    SELECT b.*,
           CASE WHEN b.created_at + b.d * 1.2 > %(now)s
                THEN CASE WHEN b.rs < 0.6 THEN 'open' ELSE 'in_progress' END
                WHEN b.rs < 0.25 THEN 'open' WHEN b.rs < 0.37 THEN 'in_progress'
                WHEN b.rs < 0.60 THEN 'resolved' ELSE 'closed' END AS status
    FROM base b
)
INSERT INTO "{issue_t}" (id, title, description, status, priority, assignee_id, reporter_id,
                         version, created_at, updated_at, resolved_at)
SELECT st.id,
       (%(titles)s::text[])[1 + floor(pg_temp.r(st.id, 7) * cardinality(%(titles)s::text[]))::int]
         || ' (#' || st.id || ')',
       (%(descs)s::text[])[1 + floor(pg_temp.r(st.id, 8) * cardinality(%(descs)s::text[]))::int],
       st.status,
       CASE WHEN pg_temp.r(st.id, 3) < 0.20 THEN 'low' WHEN pg_temp.r(st.id, 3) < 0.70 THEN 'medium'
            WHEN pg_temp.r(st.id, 3) < 0.92 THEN 'high' ELSE 'critical' END,
       CASE WHEN pg_temp.r(st.id, 4) < 0.12 THEN NULL
            ELSE (%(uids)s::bigint[])[1 + floor(%(nu)s * pg_temp.r(st.id, 5) ^ 3)::int] END,
       (%(uids)s::bigint[])[1 + floor(%(nu)s * pg_temp.r(st.id, 6))::int],
       CASE st.status WHEN 'open' THEN 1 WHEN 'in_progress' THEN 2 WHEN 'resolved' THEN 3 ELSE 4 END,
       st.created_at,
       CASE st.status
            WHEN 'open' THEN CASE WHEN pg_temp.ncomments(st.id) = 0 THEN st.created_at
                 ELSE st.created_at + (%(now)s - st.created_at) * 0.5 * pg_temp.r(st.id, 9) END
            WHEN 'in_progress' THEN st.created_at + LEAST(st.d * 0.25, (%(now)s - st.created_at) * 0.5)
            WHEN 'resolved' THEN st.created_at + st.d
            ELSE st.created_at + st.d * 1.1 END,
       CASE WHEN st.status IN ('resolved', 'closed') THEN st.created_at + st.d END
FROM st
"""

LABELS_SQL = """
INSERT INTO "{label_t}" (issue_id, label_id)
SELECT i.id, (%(lids)s::bigint[])[1 + (floor(%(nl)s * pg_temp.r(i.id, 12) ^ 2)::int + k) %% %(nl)s]
FROM "{issue_t}" i
CROSS JOIN LATERAL generate_series(0, floor(3.5 * pg_temp.r(i.id, 13))::int - 1) AS k
WHERE i.id > %(offset)s
"""

EVENTS_SQL = """
INSERT INTO "{event_t}" (issue_id, type, timestamp, actor_id, source, details)
SELECT i.id, e.type, e.ts, CASE WHEN e.step = 0 THEN i.reporter_id
                                ELSE COALESCE(i.assignee_id, i.reporter_id) END, 'api',
       CASE WHEN e.step = 0 THEN '{{}}'::jsonb ELSE jsonb_build_object('from', e.f, 'to', e.t) END
FROM "{issue_t}" i
CROSS JOIN LATERAL (VALUES
    (0, 'created', NULL, NULL, i.created_at),
    (1, 'status_changed', 'open', 'in_progress',
        CASE WHEN i.status = 'in_progress' THEN i.updated_at
             ELSE i.created_at + (i.resolved_at - i.created_at) * 0.25 END),
    (2, 'status_changed', 'in_progress', 'resolved', i.resolved_at),
    (3, 'status_changed', 'resolved', 'closed', i.updated_at)
) AS e(step, type, f, t, ts)
WHERE i.id > %(offset)s AND e.step <= i.version - 1
"""

COMMENTS_SQL = """
WITH c AS (
    INSERT INTO "{comment_t}" (issue_id, author_id, body, created_at)
    SELECT i.id,
           (%(uids)s::bigint[])[1 + floor(%(nu)s * pg_temp.r(i.id * 131 + k, 14) ^ 2)::int],
           (%(comments)s::text[])[1 + floor(pg_temp.r(i.id * 131 + k, 15)
                                          * cardinality(%(comments)s::text[]))::int],
           i.created_at + (i.updated_at - i.created_at) * k::float8
             / (pg_temp.ncomments(i.id) + CASE WHEN i.status = 'open' THEN 0 ELSE 1 END)
    FROM "{issue_t}" i
    CROSS JOIN LATERAL generate_series(1, pg_temp.ncomments(i.id)) AS k
    WHERE i.id > %(offset)s
    RETURNING id, issue_id, author_id, body, created_at
)
INSERT INTO "{event_t}" (issue_id, type, timestamp, actor_id, source, details)
SELECT c.issue_id, 'commented', c.created_at, c.author_id, 'api',
       jsonb_build_object('comment_id', c.id, 'excerpt',
           CASE WHEN length(c.body) <= 100 THEN c.body ELSE left(c.body, 99) || '…' END)
FROM c
"""

# Comments between created_at and updated_at (the last one at updated_at for open issues, before the last
# status change otherwise), each with its ``commented`` event. The ``created`` event and the status path
# open → in_progress → resolved → closed (version - 1 steps of it) are EVENTS_SQL.


class _PostgresPlan:
    """The PostgreSQL load: one transaction (default), or the issues first and then N connections at once."""

    def __init__(
        self,
        command: "Command",
        n: int,
        offset: int,
        user_ids: list[int],
        label_ids: list[int],
        now: datetime,
        seed: int,
    ) -> None:
        self.command, self.n, self.offset, self.seed = command, n, offset, seed
        self.tables = {
            "issue_t": Issue._meta.db_table,
            "label_t": Issue.labels.through._meta.db_table,
            "comment_t": Comment._meta.db_table,
            "event_t": IssueEvent._meta.db_table,
        }
        self.params = {
            "n": n,
            "offset": offset,
            "uids": user_ids,
            "nu": len(user_ids),
            "lids": label_ids,
            "nl": len(label_ids),
            "now": now,
            "span": SPAN_SECONDS,
            "titles": TITLES,
            "descs": DESCRIPTIONS,
            "comments": COMMENTS,
        }
        existing = Issue.objects.count() if offset else 0
        self.rebuild_indexes = n >= BIG_LOAD and n >= existing

    def _cursor(self, cursor: Any) -> "_Timed":
        return _Timed(cursor, self.command.stdout if self.command.verbosity >= 2 else None)

    def _prepare(self, cursor: "_Timed") -> None:
        """Session settings and helper functions, for this transaction / connection."""
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # Bulk-load habit: a superuser skips the per-row foreign-key triggers for this transaction (every id
        # written here comes from rows just read or inserted).
        cursor.cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "CREATE OR REPLACE FUNCTION pg_temp.r(id bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE AS "
            f"$$ SELECT (hashint8(id * 64 + k + {int(self.seed)} * 1000003) & 2147483647)::float8 / 2147483648.0 $$"
        )
        cursor.execute(
            "CREATE OR REPLACE FUNCTION pg_temp.ncomments(id bigint) RETURNS int LANGUAGE sql IMMUTABLE AS "
            f"$$ SELECT CASE WHEN pg_temp.r(id, 10) < {HOT_ISSUE_SHARE} THEN {HOT_COMMENTS} "
            "ELSE floor(4 * pg_temp.r(id, 11) ^ 2)::int END $$"
        )

    def _drop_indexes(self, cursor: "_Timed") -> list[str]:
        """Drop the secondary indexes (not those behind constraints); a big load rebuilds them once at the end."""
        if not self.rebuild_indexes:
            return []
        cursor.cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)
            """,
            [list(self.tables.values())],
        )
        dropped = []
        for name, definition in cursor.cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
            dropped.append(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        return dropped

    def _run(self, cursor: "_Timed", sql: str) -> int:
        cursor.execute(sql.format(**self.tables), self.params)
        return cursor.rowcount

    def _set_sequence(self, cursor: "_Timed") -> None:
        issue_t = self.tables["issue_t"]
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{issue_t}\"', 'id'), "
            f'GREATEST((SELECT MAX(id) FROM "{issue_t}"), 1))'
        )

    def run_in_this_transaction(self) -> dict[str, int]:
        with connection.cursor() as raw:
            cursor = self._cursor(raw)
            self._prepare(cursor)
            dropped = self._drop_indexes(cursor)
            counts = {"issues": self._run(cursor, ISSUES_SQL), "labels": self._run(cursor, LABELS_SQL)}
            counts["events"] = self._run(cursor, EVENTS_SQL)
            counts["comments"] = self._run(cursor, COMMENTS_SQL)
            counts["events"] += counts["comments"]
            for definition in dropped:
                cursor.execute(definition)
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            self._set_sequence(cursor)
        return counts

    def _in_own_connection(self, statements: list[str], formatted: bool = False) -> list[int]:
        """Run statements in one transaction of this thread's own connection, then close it."""
        try:
            with transaction.atomic(), connection.cursor() as raw:
                cursor = self._cursor(raw)
                self._prepare(cursor)
                if formatted:
                    for sql in statements:
                        cursor.execute(sql)
                    return []
                return [self._run(cursor, sql) for sql in statements]
        finally:
            connection.close()

    def run_in_parallel(self, jobs: int) -> dict[str, int]:
        from concurrent.futures import ThreadPoolExecutor

        with transaction.atomic(), connection.cursor() as raw:
            cursor = self._cursor(raw)
            self._prepare(cursor)
            dropped = self._drop_indexes(cursor)
            counts = {"issues": self._run(cursor, ISSUES_SQL)}
        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                labels, events, comments = (
                    pool.submit(self._in_own_connection, [sql]) for sql in (LABELS_SQL, EVENTS_SQL, COMMENTS_SQL)
                )
                counts["labels"] = labels.result()[0]
                counts["comments"] = comments.result()[0]
                counts["events"] = events.result()[0] + counts["comments"]
        except BaseException:
            self._undo(dropped)
            raise
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # CREATE INDEX builds may run side by side
            list(pool.map(lambda definition: self._in_own_connection([definition], formatted=True), dropped))
        with connection.cursor() as raw:
            self._set_sequence(self._cursor(raw))
        return counts

    def _undo(self, dropped: list[str]) -> None:
        """After a failed parallel load: remove what was added, put the indexes back."""
        t = self.tables
        with transaction.atomic(), connection.cursor() as cursor:
            for table, column in ((t["event_t"], "issue_id"), (t["comment_t"], "issue_id"), (t["label_t"], "issue_id")):
                cursor.execute(f'DELETE FROM "{table}" WHERE "{column}" > %s', [self.offset])
            cursor.execute(f'DELETE FROM "{t["issue_t"]}" WHERE id > %s', [self.offset])
            for definition in dropped:
                cursor.execute(definition)
