"""Running the documented commands as a reader does: `make run` in one terminal, each Markdown file's shell blocks
pasted in order into one bash session in another (so ``TOKEN`` and ``ID`` carry over), and checking what each
command answered against what the text shows (tests/docs/markdown.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.markdown import Command, mismatch, read_blocks, shape_mismatch

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_BASE = "http://127.0.0.1:8000"  # where the documentation says `make run` serves
TOKEN_LINE = "Its API token is on the next line:"  # what `make run` prints before the demo admin's token
MARK = "@@docs-test"
# What the test process has but a reader's new terminal has not: the suite's database and settings, pytest's
# and make's own variables. The session must find its configuration where a reader's does (.env, the defaults).
NOT_INHERITED = (
    *("DATABASE_URL", "DJANGO_", "EMBEDDED_PG_", "PYTEST_", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"),
    *("THROTTLE_", "REDIS_URL", "DB_", "API_", "IMPORT_", "AXES_", "CACHE_"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reader_environment(**extra: str) -> dict[str, str]:
    """A new terminal's environment: this process's, less what the test run itself set."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}
    local = "127.0.0.1,localhost"
    env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [env.get("NO_PROXY", env.get("no_proxy")), local]))
    env.update(extra)
    return env


@dataclass
class Server:
    """`make run PORT=...` on its own embedded PostgreSQL, as the README starts it."""

    url: str
    token: str
    env: dict[str, str]  # the reader's environment in this set-up (the embedded cluster's port and folder)
    output: list[str] = field(default_factory=list)


FOLDER_PREFIX = "docs-test-pg-"


@contextlib.contextmanager
def make_run(timeout: float = 600) -> Iterator[Server]:
    """`make run` with DATABASE_URL unset, so that it starts, migrates and serves an embedded PostgreSQL, exactly
    as in a fresh checkout; only the cluster's port and folder are ours (EMBEDDED_PG_PORT, EMBEDDED_PG_DATA), so
    that it cannot meet a developer's `make run`, `make db-start` or the suite's database. Stopped with Ctrl-C
    (SIGINT to its process group, as a terminal sends it), which also stops the cluster; the folder is removed,
    also when this process is ended by SIGTERM (`make test` interrupted), and by the next run if it was killed."""
    sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    (folder / "owner.pid").write_text(str(os.getpid()))
    port = free_port()
    env = reader_environment(EMBEDDED_PG_PORT=str(free_port()), EMBEDDED_PG_DATA=str(folder / "data"))
    output: list[str] = []
    with interrupted_by_sigterm():
        process = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C works even if we ignore it
        )
        (folder / "make.pid").write_text(str(process.pid))
        stdout = process.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                output.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        url = f"http://127.0.0.1:{port}"
        try:
            token = wait_for_token(process, output, url, timeout)
            yield Server(url=url, token=token, env=env, output=output)
        finally:
            stop(process.pid, reap=process.poll)
            process.wait()
            remove(folder)
            reader.join(timeout=5)


@contextlib.contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM (or SIGHUP) as Ctrl-C meanwhile, so that pytest unwinds and the server is stopped, not left behind."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def remove(folder: Path) -> None:
    """Stop the cluster in ``folder`` if it still runs (the recipe's trap stops it on Ctrl-C), then remove it."""
    env = reader_environment(EMBEDDED_PG_DATA=str(folder / "data"))
    devdb = [sys.executable, "-m", "devdb", "stop"]
    subprocess.run(devdb, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
    for _ in range(300):  # the server removes its pid file last
        if not (folder / "data" / "postmaster.pid").exists():
            break
        time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def sweep_stale() -> None:
    """Stop and remove what a docs test killed without cleaning up (kill -9) left: its `make run` and cluster."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue  # that docs test is still running
        with contextlib.suppress(OSError, ValueError):
            make = int((folder / "make.pid").read_text())
            if b"make" in Path(f"/proc/{make}/cmdline").read_bytes():
                stop(make)
        remove(folder)


def stop(group: int, reap: Callable[[], object] = lambda: None) -> None:
    """Ctrl-C to the process group of `make run` (its leader's pid), then SIGTERM, then SIGKILL, until it is empty
    (the recipe's shell stops the cluster before it exits). ``reap`` waits for make if it is our child."""
    for sig, seconds in ((signal.SIGINT, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        for _ in range(seconds * 10):
            time.sleep(0.1)
            reap()
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return


def wait_for_token(process: subprocess.Popen, output: list[str], url: str, timeout: float) -> str:
    """The token `make run` printed, once the server answers /api/health."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`make run` ended with status {process.returncode}:\n{''.join(output)[-4000:]}")
        lines = [line.strip() for line in output]
        after = [number + 1 for number, line in enumerate(lines) if line.endswith(TOKEN_LINE)]
        if after and after[-1] < len(lines):
            with contextlib.suppress(OSError), opener.open(f"{url}/api/health", timeout=2) as answer:
                if answer.status == 200:
                    token = lines[after[-1]]
                    assert re.fullmatch(r"[0-9a-f]{40}", token), f"not a token: {token!r}"
                    return token
        time.sleep(0.2)
    raise AssertionError(f"`make run` did not serve {url} within {timeout:.0f} s:\n{''.join(output)[-4000:]}")


# --- one file's commands in one bash session ---------------------------------------------------------------------


@dataclass
class Outcome:
    command: Command
    status: int | None  # exit status; None when the session ended before the command finished
    http: list[int]  # the HTTP status of each curl call it made
    body: str  # what it printed (stdout and stderr, as a terminal shows them)

    def problems(self) -> list[str]:
        """What is wrong with this answer, compared with what the documentation says of it."""
        command = self.command
        if self.status is None:
            return ["did not finish: the session ended (or timed out) before it"]
        found = []
        if self.status != 0:
            found.append(f"exit status {self.status}")
        if command.status is not None:
            if not self.http:
                found.append(f"the documentation shows HTTP {command.status}, and it made no HTTP request")
            elif any(code != command.status for code in self.http):
                found.append(f"HTTP {', '.join(map(str, self.http))}; the documentation shows {command.status}")
        elif any(not 200 <= code < 400 for code in self.http):
            found.append(f"HTTP {', '.join(map(str, self.http))} (the documentation shows no error)")
        if command.has_output or command.has_example:
            try:
                answer = json.loads(self.body)
            except ValueError:
                found.append("the answer is not JSON; the documentation shows JSON")
            else:
                wrong = (
                    mismatch(command.output, answer) if command.has_output else shape_mismatch(command.example, answer)
                )
                if wrong:
                    found.append(wrong if command.has_output else f"{wrong} (the example's shape)")
        return found


def script(commands: list[Command], prelude: str, base_url: str) -> str:
    """The session: curl reports each call's status (on stderr, as a terminal would not show it), then each
    command between markers, then the variables the file set."""
    lines = [
        f"curl() {{ command curl --no-progress-meter -w '%{{stderr}}\\n{MARK} http %{{http_code}}\\n' \"$@\"; }}",
        prelude,
    ]
    for number, command in enumerate(commands):
        lines.append(f"printf '{MARK} begin {number}\\n'")
        lines.append(command.text.replace(DOCUMENTED_BASE, base_url))
        lines.append(f"printf '\\n{MARK} end {number} %s\\n' \"$?\"")
    lines.append(f"printf '{MARK} TOKEN %s\\n' \"${{TOKEN-}}\"")
    return "\n".join(lines) + "\n"


def run_session(
    commands: list[Command], server: Server, prelude: str = "", timeout: float = 300
) -> tuple[list[Outcome], str | None, str]:
    """Run ``commands`` in one bash session in the checkout (no standard input, like a pasted block); return each
    one's outcome, the value of ``TOKEN`` at the end, and the whole transcript."""
    bash = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", script(commands, prelude, server.url)],
        cwd=ROOT,
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so that a command still running at the timeout goes with it
    )
    try:
        out, _ = bash.communicate(timeout=timeout)
        transcript = out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(bash.pid, signal.SIGKILL)
        out, _ = bash.communicate()
        transcript = out.decode(errors="replace") + f"\n(timed out after {timeout:.0f} s)"
    outcomes = []
    for number, command in enumerate(commands):
        section = re.search(
            rf"^{MARK} begin {number}\n(?P<body>.*?)\n{MARK} end {number} (?P<status>\d+)\n",
            transcript,
            flags=re.S | re.M,
        )
        if section is None:
            outcomes.append(Outcome(command, None, [], ""))
            continue
        body = section.group("body")
        http = [int(code) for code in re.findall(rf"\n{MARK} http (\d{{3}})\n", body)]
        body = re.sub(rf"\n{MARK} http \d{{3}}\n", "", body)
        outcomes.append(Outcome(command, int(section.group("status")), http, body))
    token = re.search(rf"^{MARK} TOKEN (.*)$", transcript, flags=re.M)
    return outcomes, (token.group(1) if token else None), transcript


def report(path: str, outcomes: list[Outcome]) -> list[str]:
    """One paragraph per command that does not do what the documentation says."""
    paragraphs = []
    for outcome in outcomes:
        problems = outcome.problems()
        if problems:
            body = outcome.body.strip()
            paragraphs.append(
                f"{path}:{outcome.command.line}: {outcome.command.text.splitlines()[0].strip()}\n"
                + "".join(f"    - {problem}\n" for problem in problems)
                + f"    output: {body[:800] + (' ...' if len(body) > 800 else '') or '(none)'}"
            )
    return paragraphs


@dataclass
class Run:
    """One Markdown file's commands, run in one session."""

    outcomes: list[Outcome]
    token: str | None  # TOKEN at the end of the session
    transcript: str


def commands_of(name: str) -> list[Command]:
    return [command for block in read_blocks(ROOT / name) if block.runs for command in block.commands]


def run_file(name: str, server: Server) -> Run:
    """The file's commands in one session. A reader who follows the README has TOKEN set (its tour sets it); a
    file that does not set TOKEN itself gets the token `make run` printed, as that reader would have it."""
    commands = commands_of(name)
    sets_token = any(command.text.lstrip().startswith("TOKEN=") for command in commands)
    prelude = "" if sets_token else f"TOKEN={server.token}"
    return Run(*run_session(commands, server, prelude))
