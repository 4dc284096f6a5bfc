"""The titles and descriptions of the demo data, shared by ``manage.py seed_demo`` and ``bench/seed.py``.

Search needs text that behaves like a real tracker's: a few words in most issues, a long tail of words in a
handful, phrases, and descriptions of one to three sentences (sometimes many). Each slot of the grammar below
(subject, symptom, context, sentence, component, error code) picks from its list with a Zipf-like law, the
``i``-th entry (1-based) with probability ``log((i + 1) / i) / log(n + 1)``, about ``1 / (i ln n)``: the lists are
in order of frequency, the first entry the most common. Component names (``HEADS`` x ``TAILS``, 900 of them)
and error codes (``E1000``-``E9999``) are the long tail: at a million issues the rarest appear in a few issues each.

The choices are ``u(k)``, uniform numbers in [0, 1) numbered by ``k`` (the ``K_*`` constants, each read at most
once per issue): ``seed_demo`` draws them from its random generator, ``bench/seed.py`` hashes them from the issue
id in SQL built from the same lists and the same arithmetic (``tests/test_bench_seed.py`` checks that both write
the same text for the same numbers).
"""

import math
from collections.abc import Callable

Draw = Callable[[int], float]

# What the issue is about (lower case unless an acronym; the title capitalises it).
SUBJECTS = [
    "login",
    "CSV export",
    "search",
    "dashboard",
    "password reset",
    "file upload",
    "notifications",
    "data import",
    "API",
    "database migration",
    "report builder",
    "checkout",
    "user settings",
    "mobile app",
    "email digest",
    "session handling",
    "webhook delivery",
    "SSO login",
    "invoice PDF",
    "audit log",
    "backup job",
    "calendar sync",
    "access tokens",
    "image thumbnails",
    "admin panel",
    "permissions check",
    "rate limiting",
    "billing page",
    "comment editor",
    "attachment preview",
    "kanban board",
    "push notifications",
    "timezone handling",
    "two-factor authentication",
    "query builder",
    "chart rendering",
    "websocket connection",
    "background worker",
    "cron scheduler",
    "payment gateway",
    "LDAP sync",
    "cache invalidation",
    "bulk edit",
    "autosave",
    "markdown preview",
    "PDF export",
    "spreadsheet export",
    "onboarding wizard",
    "team invitations",
    "OAuth callback",
    "Slack integration",
    "activity feed",
    "dark mode toggle",
    "keyboard shortcuts",
    "translation layer",
    "status page",
    "health check",
    "print view",
    "drag and drop",
    "avatar upload",
]
# What goes wrong.
SYMPTOMS = [
    "fails",
    "times out",
    "is slow",
    "crashes",
    "returns 500",
    "shows a blank page",
    "hangs",
    "loses data",
    "ignores the filter",
    "shows wrong totals",
    "breaks the layout",
    "logs the user out",
    "rejects valid input",
    "leaks memory",
    "freezes the browser",
    "corrupts the file",
    "retries forever",
    "skips records",
    "double counts entries",
    "renders incorrectly",
    "returns stale data",
    "throws a null pointer exception",
    "fails with connection reset by peer",
    "runs out of memory",
    "deadlocks",
    "returns 403 for admins",
    "shows a raw stack trace",
    "drops the last row",
    "is not translated",
    "ignores the timezone",
    "uses the wrong currency",
    "keeps spinning",
    "cannot be cancelled",
    "reports the wrong user",
    "stops after a few minutes",
    "sends no notification",
    "truncates long names",
    "mangles unicode characters",
    "loses the selection",
    "fails silently",
]
# When or where it happens (in CONTEXT_SHARE of the titles).
CONTEXTS = [
    "with large files",
    "on Safari",
    "after the upgrade",
    "for admin users",
    "under load",
    "on Windows",
    "in dark mode",
    "behind a proxy",
    "with special characters",
    "for new accounts",
    "on iOS",
    "on Android",
    "in Firefox",
    "with more than 10000 rows",
    "on the staging server",
    "after a password change",
    "when the network drops",
    "with SSO enabled",
    "during the nightly backup",
    "in the EU region",
    "on slow connections",
    "with two browser tabs open",
    "for archived projects",
    "after midnight UTC",
    "with an expired token",
    "on first login",
    "for guest users",
    "with a German locale",
    "when the cache is cold",
    "on read replicas",
    "with an ad blocker",
    "on retina screens",
    "after the daylight saving change",
    "in offline mode",
    "with screen readers",
    "on Chromebooks",
    "behind the corporate VPN",
    "with emoji in names",
    "on the free plan",
    "with custom fields",
    "when sorting by date",
    "after a failed payment",
    "with right-to-left languages",
    "over IPv6",
    "inside an iframe",
    "on ARM servers",
]
# Component names: HEADS[i % 30] + TAILS[i // 30] for the i-th (0-based) of COMPONENTS, the first the most common.
HEADS = [
    "auth", "pay", "geo", "doc", "mail", "feed", "sync", "vault", "pixel", "quota",
    "ledger", "relay", "seek", "render", "cron", "blob", "queue", "shard", "token", "audit",
    "media", "notify", "stream", "report", "cache", "index", "graph", "flag", "event", "batch",
]  # fmt: skip
TAILS = [
    "gate", "hub", "keeper", "worker", "proxy", "store", "bridge", "daemon", "pipe", "lens",
    "mux", "forge", "watch", "cast", "loader", "scan", "core", "pilot", "box", "link",
    "stack", "tap", "agent", "bus", "port", "grid", "mill", "vane", "smith", "ward",
]  # fmt: skip
COMPONENTS = [HEADS[i % len(HEADS)] + TAILS[i // len(HEADS)] for i in range(len(HEADS) * len(TAILS))]
CODE_BASE = 1000  # error codes E1000 (the most mentioned) ... E9999
CODES = 9000
RELEASES = [f"5.{i // 10}.{i % 10}" for i in range(99, -1, -1)]  # 5.9.9 (the most mentioned) ... 5.0.0
# Description sentences: {s} a subject, {y} a symptom, {c} a context, {m} a component, {e} an error code,
# {v} a release, {n} a number.
SENTENCES = [
    "Steps to reproduce: open the {s}, change a field and press save.",
    "Expected the change to be saved, but an error banner appears.",
    "Seen by several customers since version {v}.",
    "The {s} {y} {c}.",
    "Happens only {c}; other setups are fine.",
    "Error {e} shows up in the server log.",
    "The stack trace points at {m}.",
    "Started right after the deploy of {v}.",
    "Workaround: reload the page and try again.",
    "About {n} users reported it this week.",
    "Reproduced on staging with a fresh account.",
    "It also {y} {c}.",
    "Could be related to the recent change in {m}.",
    "Low impact, but support gets a ticket about it every day.",
    "Logs show a null pointer exception in {m}.",
    "The request takes {n} seconds before the gateway gives up.",
    "Attached a screenshot and the browser console output.",
    "Customer ticket mentions error code {e}.",
    "Blocks the release of {v}, so the priority was raised.",
    "Not reproducible locally; the production database is much larger.",
    "A retry usually works, which suggests a race condition.",
    "The nightly job that builds the CSV export failed with {e}.",
    "Memory keeps growing until the {m} worker is killed.",
    "Connection reset by peer appears in the {m} logs just before it happens.",
    "Permission denied when a guest user opens the {s}.",
    "Checked the database: the row is written twice.",
    "Rolling back to {v} makes it go away.",
    "The {s} works in Chrome but {y} in Safari.",
    "Timeout after {n} seconds when the {s} runs {c}.",
    "Only accounts created before {v} are affected.",
    "The health check of {m} stays green while this happens.",
    "Disk usage on the database server jumps by {n} GB during the export.",
    "Users in the EU region see it more often.",
    "Clearing the browser cache does not help.",
    "The same request through the API works fine.",
    "A deadlock detected message shows up in the database log.",
    "The {m} queue backs up to {n} thousand messages.",
    "We could add a regression test once the fix is in.",
    "Sentry groups it under {e}.",
    "Feature flag {m} was turned on the same day.",
    "The upload reaches 99% and then stalls.",
    "Out of memory errors appear on the worker nodes.",
    "Probably a missing index on the events table.",
    "The accessibility audit flagged this as well.",
    "Design says the spacing should match the mockups.",
]

CONTEXT_SHARE = 0.6  # titles with a context
COMPONENT_TAIL_SHARE = 0.12  # titles ending "in <component>"
CODE_TAIL_SHARE = 0.08  # titles ending "(<error code>)"
MAX_SENTENCES = 8

# The numbered draws of one issue. Sentence j (1 ..  MAX_SENTENCES) reads K_SENTENCE * j + 0 (its template) and
# + 1 ... + 7 (the values of FILLERS, in order).
K_SUBJECT, K_SYMPTOM, K_HAS_CONTEXT, K_CONTEXT, K_TAIL_KIND, K_TAIL, K_SENTENCES = 1, 2, 3, 4, 5, 6, 7
K_SENTENCE = 8
DRAWS = K_SENTENCE * (MAX_SENTENCES + 1)  # every k is below this


def zipf_index(u: float, n: int) -> int:
    """A 1-based index into a list of ``n``, ``i`` with probability ``log((i + 1) / i) / log(n + 1)``."""
    return math.floor(float(n + 1) ** u)


def pick(words: list[str], u: float) -> str:
    return words[zipf_index(u, len(words)) - 1]


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def error_code(u: float) -> str:
    return f"E{CODE_BASE - 1 + zipf_index(u, CODES)}"


def number(u: float) -> str:
    return str(2 + math.floor(200 * u**3))


def sentence_count(v: float) -> int:
    """0 (5%), 1 (40%), 2 (30%), 3 (18%), or 4 to 8 (7%)."""
    if v < 0.05:
        return 0
    if v < 0.45:
        return 1
    if v < 0.75:
        return 2
    if v < 0.93:
        return 3
    return 4 + math.floor((v - 0.93) * 5 / 0.07)


def title(u: Draw) -> str:
    """``Subject symptom [context] [in component | (code)]`` (without the `` (#id)`` the loaders append)."""
    text = capitalized(pick(SUBJECTS, u(K_SUBJECT))) + " " + pick(SYMPTOMS, u(K_SYMPTOM))
    if u(K_HAS_CONTEXT) < CONTEXT_SHARE:
        text += " " + pick(CONTEXTS, u(K_CONTEXT))
    tail = u(K_TAIL_KIND)
    if tail < COMPONENT_TAIL_SHARE:
        text += " in " + pick(COMPONENTS, u(K_TAIL))
    elif tail < COMPONENT_TAIL_SHARE + CODE_TAIL_SHARE:
        text += f" ({error_code(u(K_TAIL))})"
    return text


# The placeholders of SENTENCES, in the order they are filled, and what fills them.
FILLERS: list[tuple[str, Callable[[float], str]]] = [
    ("{s}", lambda u: pick(SUBJECTS, u)),
    ("{y}", lambda u: pick(SYMPTOMS, u)),
    ("{c}", lambda u: pick(CONTEXTS, u)),
    ("{m}", lambda u: pick(COMPONENTS, u)),
    ("{e}", error_code),
    ("{v}", lambda u: pick(RELEASES, u)),
    ("{n}", number),
]


def sentence(u: Draw, j: int) -> str:
    """The ``j``-th sentence: a template of SENTENCES with its placeholders filled (each one draw)."""
    base = K_SENTENCE * j
    text = pick(SENTENCES, u(base))
    for offset, (placeholder, fill) in enumerate(FILLERS, start=1):
        if placeholder in text:
            text = text.replace(placeholder, fill(u(base + offset)))
    return text


def description(u: Draw) -> str:
    """Sentences separated by one space (none: an empty description)."""
    return " ".join(sentence(u, j) for j in range(1, sentence_count(u(K_SENTENCES)) + 1))
