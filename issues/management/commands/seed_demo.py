"""``manage.py seed_demo [--issues N] [--users U] [--projects P] [--reset] [--seed S]``: fill the tracker with demo
data.

This is the data ``make demo`` gives a newcomer (1,000 issues, 20 users, 5 projects by default), written through
the ORM (``bulk_create``) in one transaction. The benchmarks load their 10k–1M issues with ``bench/seed.py``, a
set-based loader that writes the same shape of data; ``tests/test_seed_demo.py`` and
``tests/test_bench_seed.py`` check the same invariants on both.

The data, and the invariants it keeps:
- ``U`` users ``demo_user_<n>`` (unusable password), each a member of the default project
  (``DEFAULT_PROJECT_KEY``, internal, as the migration makes it).
- ``P`` projects: the default one first, then ``WEB``, ``API``, ``OPS``, ``MOB``, ... (``DEMO<k>`` past the list),
  private and internal mixed. Each project after the first has a team of about 40% of the users (one maintainer,
  the rest members; a private one also has a few viewers), drawn from the key, so a second run finds the same
  teams. Existing projects and memberships are kept as they are.
- each project has the 12 LABELS of its own. Issues are spread over the projects, skewed (the first has about a
  third); an issue's reporter, assignee, commenters and labels are those of its project (its members with the
  member or maintainer role), so everyone on an issue can see it. Numbers are given per project in creation
  order (``take_issue_numbers``, one statement per project).
- Assignees are skewed: 12% of issues are unassigned, the rest go to the team's user ``floor(T * r**3)`` (the team
  in id order), so a few users carry most issues.
- issues created over the past year, in id order; priority low 20% / medium 50% / high 22% / critical 8%.
  Resolution takes 1 hour to 8 weeks (``1h + 8w * r**2``); an issue is resolved or closed only if that
  time (plus 20%) has passed, so recent issues are open or in progress, as in a real tracker.
- status history: ``open → in_progress → resolved → closed``; each step is one ``status_changed``
  event, so ``version = 1 + number of status events`` (open 1, in progress 2, resolved 3, closed 4).
  ``resolved_at`` is set exactly when the status is resolved or closed (the time of ``→ resolved``).
- every issue has one ``created`` event at ``created_at``; every comment one ``commented`` event.
  Comments fall between ``created_at`` and ``updated_at``; ``updated_at`` is the time of the last
  event. 0–3 comments per issue (a few "hot" issues have 120), 0–3 labels out of 12 (skewed).
- titles and descriptions come from ``issues/management/demo_text.py`` (a tracker's vocabulary, Zipf-like: a few
  words in most issues, component names and error codes in a handful; descriptions of 0-8 sentences, mostly 1-3).
  Titles end with `` (#<id>)``. Here the ids come from the sequences; added again, the issues follow the existing
  ones.
"""

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat, Lower
from django.utils import timezone

from issues import search_index
from issues.access import default_project_key
from issues.events import comment_excerpt
from issues.fastpath.session import take_issue_numbers
from issues.management import demo_text
from issues.models import (
    Comment,
    EventType,
    Issue,
    IssueEvent,
    Label,
    Membership,
    Project,
    Role,
    Source,
    Visibility,
    number_sequence_name,
)

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

# The demo projects after the default one: key, name, visibility.
PROJECTS: list[tuple[str, str, Visibility]] = [
    ("WEB", "Website", Visibility.PRIVATE),
    ("API", "Public API", Visibility.INTERNAL),
    ("OPS", "Operations", Visibility.PRIVATE),
    ("MOB", "Mobile apps", Visibility.INTERNAL),
    ("DATA", "Data platform", Visibility.PRIVATE),
    ("SEC", "Security", Visibility.PRIVATE),
    ("INFRA", "Infrastructure", Visibility.INTERNAL),
    ("DOCS", "Documentation", Visibility.INTERNAL),
    ("QA", "Quality", Visibility.PRIVATE),
]
TEAM_SHARE = 0.4  # of the users, in each project after the default one
PRIVATE_VIEWERS = 2  # viewers (besides the team) of each private project
SPAN_SECONDS = 365 * 86400  # issues are created over the past year
HOT_ISSUE_SHARE = 0.0005  # issues with HOT_COMMENTS comments (more than the detail shows)
HOT_COMMENTS = 120
USER_PREFIX = "demo_user_"
BATCH = 2000  # rows per INSERT
STATUS_PATH = ["open", "in_progress", "resolved", "closed"]  # version = 1 + index in this path


class Command(BaseCommand):
    help = "Fill the database with realistic demo projects, issues, labels, comments and timeline events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issues", type=int, default=1000, help="Number of issues to add (default 1000).")
        parser.add_argument("--users", type=int, default=20, help="Number of demo users (default 20).")
        parser.add_argument(
            "--projects",
            type=int,
            default=5,
            help="Number of projects, the default project first (default 5); existing ones are reused.",
        )
        parser.add_argument("--seed", type=int, default=1, help="Seed of the pseudo-random choices (default 1).")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete every issue, comment and event first (projects, members, labels and users stay).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        n_issues, n_users, n_projects = options["issues"], options["users"], options["projects"]
        if n_issues < 0 or n_users < 1 or n_projects < 1:
            raise CommandError("--issues must be >= 0, --users >= 1 and --projects >= 1.")
        started = time.monotonic()
        with transaction.atomic():
            if options["reset"]:
                reset()
            user_ids = ensure_users(n_users)
            projects = ensure_projects(n_projects, user_ids)
            if n_issues and not projects:
                raise CommandError("No demo user may write in any of the projects (each is a viewer at most).")
            now = timezone.now().replace(microsecond=0)
            counts = _seed(n_issues, projects, now, options["seed"])
        # The issues' search documents, which the insert trigger queued (bulk_create inserts batches of more than
        # SEARCH_INLINE_ROWS): written now rather than left to a worker, so the demo's search uses its index.
        search_index.index_pending()
        self.stdout.write(
            f"Seeded {counts['issues']} issues, {counts['comments']} comments, {counts['events']} events, "
            f"{counts['labels']} issue labels, {len(projects)} projects, {len(user_ids)} users "
            f"in {time.monotonic() - started:.1f}s."
        )


@dataclass
class DemoProject:
    """A project issues go to: its id, and its demo users who may write there (in id order)."""

    pk: int
    key: str
    writers: list[int]
    label_ids: list[int]


def reset() -> None:
    """Delete every issue with its comments, events and labels (the labels themselves, the projects, their members
    and the users stay); the projects' numbers start again at 1."""
    for model in (IssueEvent, Comment, Issue.labels.through):
        model.objects.all().delete()
    Issue.objects.only("pk").delete()
    sequences = [number_sequence_name(pk) for pk in Project.objects.values_list("pk", flat=True)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(seq::regclass, 1, false) FROM unnest(%s::text[]) AS seq", [sequences])


def ensure_default_project() -> Project:
    """The default project, as migration 0010 makes it (a flushed test database has none)."""
    project, _ = Project.objects.get_or_create(
        key=default_project_key(),
        defaults={"name": "Main", "visibility": Visibility.INTERNAL, "description": "The default project."},
    )
    return project


def ensure_users(n_users: int) -> list[int]:
    """The ids of ``demo_user_1`` … ``demo_user_<n>``, creating those that are missing; each is a member of the
    default project (a role it has there already stays)."""
    user_model = get_user_model()
    names = [f"{USER_PREFIX}{i}" for i in range(1, n_users + 1)]
    existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
    new = []
    for i, username in enumerate(names, start=1):
        if username not in existing:
            user = user_model(
                username=username,
                first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                last_name=LAST_NAMES[i % len(LAST_NAMES)],
                email=f"{username}@example.com",
            )
            user.set_unusable_password()
            new.append(user)
    user_model.objects.bulk_create(new, batch_size=BATCH)
    users = list(user_model.objects.filter(username__in=names).order_by("id").values_list("id", flat=True))
    main = ensure_default_project()
    Membership.objects.bulk_create(
        [Membership(project=main, user_id=uid, role=Role.MEMBER) for uid in users],
        ignore_conflicts=True,
        batch_size=BATCH,
    )
    return users


def project_specs(n_projects: int) -> list[tuple[str, str, Visibility]]:
    """Key, name and visibility of the ``n_projects - 1`` demo projects after the default one."""
    specs = [spec for spec in PROJECTS if spec[0] != default_project_key()]
    k = len(specs)
    while len(specs) < n_projects - 1:
        k += 1
        specs.append((f"DEMO{k}", f"Demo project {k}", Visibility.PRIVATE if k % 2 else Visibility.INTERNAL))
    return specs[: n_projects - 1]


def ensure_projects(n_projects: int, user_ids: list[int]) -> list[DemoProject]:
    """The default project and the demo projects (created when missing), their teams and labels; the projects'
    writers are read back, so roles changed since an earlier run are respected. Projects where no demo user may
    write get no issues and are left out."""
    projects = [ensure_default_project()]
    for key, name, visibility in project_specs(n_projects):
        project, _ = Project.objects.get_or_create(key=key, defaults={"name": name, "visibility": visibility})
        projects.append(project)
    memberships = []
    for project in projects[1:]:
        team_rng = random.Random(f"{project.key}:team")  # the same team on every run (a str seed is stable)
        shuffled = team_rng.sample(user_ids, len(user_ids))
        size = max(1, round(len(user_ids) * TEAM_SHARE))
        team = sorted(shuffled[:size])
        memberships += [
            Membership(project=project, user_id=uid, role=Role.MAINTAINER if i == 0 else Role.MEMBER)
            for i, uid in enumerate(team)
        ]
        if project.visibility == Visibility.PRIVATE:
            memberships += [
                Membership(project=project, user_id=uid, role=Role.VIEWER)
                for uid in shuffled[size : size + PRIVATE_VIEWERS]
            ]
    Membership.objects.bulk_create(memberships, ignore_conflicts=True, batch_size=BATCH)
    writers: dict[int, list[int]] = {project.pk: [] for project in projects}
    rows = Membership.objects.filter(
        project__in=projects, user_id__in=user_ids, role__in=[Role.MEMBER, Role.MAINTAINER]
    ).order_by("user_id")
    for project_id, user_id in rows.values_list("project_id", "user_id"):
        writers[project_id].append(user_id)
    return [
        DemoProject(pk=project.pk, key=project.key, writers=writers[project.pk], label_ids=ensure_labels(project.pk))
        for project in projects
        if writers[project.pk]
    ]


def ensure_labels(project_id: int | None = None) -> list[int]:
    """The ids of the LABELS of project ``project_id`` (the default project when None), in their order, creating
    those that are missing (names match ignoring case)."""
    if project_id is None:
        project_id = ensure_default_project().pk
    labels = Label.objects.filter(project_id=project_id)
    have = {name.lower() for name in labels.values_list("name", flat=True)}
    Label.objects.bulk_create([Label(project_id=project_id, name=n, color=c) for n, c in LABELS if n not in have])
    by_name = dict(labels.annotate(lname=Lower("name")).values_list("lname", "id"))
    return [by_name[name] for name, _ in LABELS]


def _new_issue(rng: random.Random, g: int, n: int, now: datetime, project: DemoProject) -> tuple[Issue, int]:
    """The ``g``-th of ``n`` new issues (without its id and number yet) in ``project``, and its number of
    comments."""
    created = now - timedelta(seconds=SPAN_SECONDS * (1 - (g - 0.5 + 0.4 * (rng.random() - 0.5)) / n))
    d = timedelta(seconds=3600 + 56 * 86400 * rng.random() ** 2)  # time to resolution
    rs = rng.random()
    if created + d * 1.2 > now:
        status = "open" if rs < 0.6 else "in_progress"
    else:
        status = "open" if rs < 0.25 else "in_progress" if rs < 0.37 else "resolved" if rs < 0.6 else "closed"
    n_comments = HOT_COMMENTS if rng.random() < HOT_ISSUE_SHARE else math.floor(4 * rng.random() ** 2)
    rp = rng.random()

    def draw(k: int) -> float:  # demo_text reads each of its numbered draws at most once: the next one will do
        return rng.random()

    team = project.writers
    nu = len(team)
    if status == "open":
        updated = created if n_comments == 0 else created + (now - created) * 0.5 * rng.random()
    elif status == "in_progress":
        updated = created + min(d * 0.25, (now - created) * 0.5)
    else:
        updated = created + d * (1 if status == "resolved" else 1.1)
    issue = Issue(
        project_id=project.pk,
        title=demo_text.title(draw),
        description=demo_text.description(draw),
        status=status,
        priority="low" if rp < 0.2 else "medium" if rp < 0.7 else "high" if rp < 0.92 else "critical",
        assignee_id=None if rng.random() < 0.12 else team[math.floor(nu * rng.random() ** 3)],
        reporter_id=team[math.floor(nu * rng.random())],
        version=1 + STATUS_PATH.index(status),
        created_at=created,
        updated_at=updated,
        resolved_at=created + d if status in ("resolved", "closed") else None,
    )
    return issue, n_comments


def _status_events(issue: Issue) -> list[IssueEvent]:
    """The ``created`` event and one ``status_changed`` event per step of the issue's path."""
    events = [
        IssueEvent(
            issue_id=issue.pk,
            type=EventType.CREATED,
            timestamp=issue.created_at,
            actor_id=issue.reporter_id,
            source=Source.API,
            details={},
        )
    ]
    times = [issue.updated_at]  # in progress: the step to it is the last event
    if issue.resolved_at is not None:  # resolved or closed: in progress after a quarter of the resolution time
        times = [issue.created_at + (issue.resolved_at - issue.created_at) * 0.25, issue.resolved_at, issue.updated_at]
    for step in range(issue.version - 1):
        events.append(
            IssueEvent(
                issue_id=issue.pk,
                type=EventType.STATUS_CHANGED,
                timestamp=times[step],
                actor_id=issue.assignee_id or issue.reporter_id,
                source=Source.API,
                details={"from": STATUS_PATH[step], "to": STATUS_PATH[step + 1]},
            )
        )
    return events


def _seed(n: int, projects: list[DemoProject], now: datetime, seed: int) -> dict[str, int]:
    """Write ``n`` issues spread over ``projects`` with their labels, comments and events; the counts of what was
    written."""
    rng = random.Random(seed * 1000003 + Issue.objects.count())
    planned = []
    for g in range(1, n + 1):
        project = projects[math.floor(len(projects) * rng.random() ** 1.5)]  # skewed: the first has the most
        issue, n_comments = _new_issue(rng, g, n, now, project)
        planned.append((issue, n_comments, project))
    by_project: dict[int, list[Issue]] = {}
    for issue, _, project in planned:
        by_project.setdefault(project.pk, []).append(issue)
    for project_id, in_project in by_project.items():  # in creation order: numbers follow it
        for issue, number in zip(in_project, take_issue_numbers(project_id, len(in_project)), strict=True):
            issue.number = number
    issues = Issue.objects.bulk_create([issue for issue, _, _ in planned], batch_size=BATCH)  # ids come back
    ids = [issue.pk for issue in issues]
    for start in range(0, len(ids), BATCH):  # the title's " (#id)" suffix, one UPDATE per batch
        Issue.objects.filter(pk__in=ids[start : start + BATCH]).update(
            title=Concat("title", Value(" (#"), Cast("pk", CharField()), Value(")"), output_field=CharField())
        )

    links, comments, events = [], [], []
    for issue, n_comments, project in planned:
        label_ids, team = project.label_ids, project.writers
        nl, nu = len(label_ids), len(team)
        first = math.floor(nl * rng.random() ** 2)
        links += [
            Issue.labels.through(issue_id=issue.pk, label_id=label_ids[(first + k) % nl])
            for k in range(math.floor(3.5 * rng.random()))
        ]
        events += _status_events(issue)
        divisor = n_comments + (0 if issue.status == "open" else 1)  # open: the last comment at updated_at
        comments += [
            Comment(
                issue_id=issue.pk,
                author_id=team[math.floor(nu * rng.random() ** 2)],
                body=COMMENTS[math.floor(rng.random() * len(COMMENTS))],
                created_at=issue.created_at + (issue.updated_at - issue.created_at) * k / divisor,
            )
            for k in range(1, n_comments + 1)
        ]
    Issue.labels.through.objects.bulk_create(links, batch_size=BATCH)
    Comment.objects.bulk_create(comments, batch_size=BATCH)  # ids come back, for the events' details
    events += [
        IssueEvent(
            issue_id=comment.issue_id,
            type=EventType.COMMENTED,
            timestamp=comment.created_at,
            actor_id=comment.author_id,
            source=Source.API,
            details={"comment_id": comment.pk, "excerpt": comment_excerpt(comment.body)},
        )
        for comment in comments
    ]
    IssueEvent.objects.bulk_create(events, batch_size=BATCH)
    return {"issues": len(issues), "comments": len(comments), "events": len(events), "labels": len(links)}
