"""Gofer's grading harness: runs one learner notebook in a grading container and grades it.

Started by the container runner as ``python3 -c BOOT`` (see docs/harness-protocol.md): BOOT reads
this source from stdin and executes it as ``__main__``; the rest of stdin is an uncompressed tar
stream holding job.json, submission.ipynb, tests/*.py and files/**.

What it does, in order:
  1. forks the zygote (root) before it reads anything of the job; the zygote imports the kernel's
     machinery while the harness extracts the job (job, notebook and tests into a root-only
     directory, support files into the learner's working directory; no links, devices, absolute
     paths or ``..``), checks the notebook and loads the instructor's OK-format tests;
  2. has the zygote import the libraries the tests and the notebook name (numpy, pandas), then
     fork the trusted evaluator (uid 1001, not dumpable) and, after it, the learner's IPython
     kernel, which drops to the learner's uid before any learner code exists. The kernel's stdio
     and its sys.stdout and sys.stderr go to /dev/null, so nothing the notebook prints is held
     anywhere; the harness talks to it on the shell channel only and never subscribes to IOPub;
  3. runs every code cell once (errors do not stop later cells) within the job's time budget;
  4. starts the agent in the kernel, which the evaluator reads the notebook's globals through, and
     has the evaluator run each test case (visible ones first) in a namespace of its own; the
     outputs come back here and are compared with doctest's OutputChecker, so expected outputs
     never leave this process;
  5. scores the tests with the job's policy (gofer or otter) and prints exactly one line,
     ``GOFER-RESULT <nonce> <json>``, on the real stdout.

Only the standard library, nbformat and jupyter_client are imported here.
"""

import os
import sys

# The real stdout carries the result line and nothing else: keep a private (non-inheritable)
# copy of it, and point fd 1 and sys.stdout at stderr for everything else (library chatter,
# instructor test files that print, child processes).
_RESULT_FD = os.dup(1)
os.dup2(2, 1)
sys.stdout = sys.stderr

ROOT = os.path.abspath(os.environ.get("GOFER_HARNESS_ROOT") or "/gofer")
WORK = os.path.abspath(os.environ.get("GOFER_HARNESS_WORK") or "/tmp/work")
# `python3 -c` puts the current directory first on sys.path, and this process (root) imports
# modules after learner code ran: import only from absolute paths, and stand where the learner
# cannot write.
sys.path[:] = [p for p in sys.path if p and os.path.isabs(p)]
os.chdir("/")
os.umask(0o022)

import asyncio  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

_T0 = time.monotonic()

# Learner-side directories live next to the working directory (in the container: /tmp).
SCRATCH = os.path.dirname(WORK)
HOME = os.path.join(SCRATCH, "home")
FONT_CACHE = "/opt/gofer/matplotlib"

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
LEARNER_UID = 1000  # the kernel's uid in a pre-started container (a job given at start names its own)
MAX_ARCHIVE_MEMBERS = 20000
KERNEL_START_TIMEOUT = 60.0
INTERRUPT_GRACE = 5.0  # how long an interrupted kernel has to answer before it counts as stuck
MIN_CASE_SECONDS = 5.0  # a test case may run for a quarter of the time limit, and at least this
KERNEL_ANSWER_SECONDS = 10.0  # how long the kernel has to connect to the evaluator
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # larger shell messages are refused by zmq
EXAMPLE_OUTPUT_LIMIT = 1024 * 1024  # characters of one example's output kept by the kernel
CASE_OUTPUT_LIMIT = 4 * 1024 * 1024  # and of one case's outputs together
TEST_MESSAGE_LIMIT = 1500
GRADER_FAULT = "The notebook could not be graded because of a problem on the grader's side, not in the notebook."
RESULT_MESSAGE_LIMIT = 3900


class Outcome(Exception):
    """Ends the job early with a learner-facing status (not graded) and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class JobError(Exception):
    """Ends the job with an ``error`` (not the learner's fault): kind is 'tests' or 'internal'."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def log(*parts):
    print("[harness %.3fs]" % (time.monotonic() - _T0), *parts, file=sys.stderr, flush=True)


def ms(seconds):
    return int(round(seconds * 1000))


def shorten(text, limit):
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "\u2026"


def seconds_text(value):
    return ("%.1f" % value).rstrip("0").rstrip(".") + " s"


def natural_key(name):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and value not in (float("inf"), float("-inf"))


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def make_dir(path, mode):
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise JobError("internal", "%s exists and is not a directory" % path)
    os.chmod(path, mode)


def write_file(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        write_all(fd, data)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# 1. The job archive
# ---------------------------------------------------------------------------------------------

def extract_job(stream):
    """Extracts the tar stream: job.json, submission.ipynb and tests/ into ROOT (root only),
    files/** into WORK (readable by the learner). Nothing but regular files and directories."""
    import tarfile

    make_job_dirs()
    total = 0
    count = 0
    try:
        archive = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.TarError as err:
        raise JobError("internal", "the job archive cannot be read: %s" % err)
    with archive:
        for member in archive:
            count += 1
            if count > MAX_ARCHIVE_MEMBERS:
                raise JobError("internal", "the job archive has more than %d members" % MAX_ARCHIVE_MEMBERS)
            name = member.name
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or "\\" in name or "\0" in name or ".." in parts:
                raise JobError("internal", "the job archive holds an unsafe name: %r" % name)
            if not (member.isreg() or member.isdir()):
                raise JobError("internal", "the job archive holds something other than a file or "
                                           "directory: %r" % name)
            if not parts:
                continue
            if parts[0] == "files":
                base, rel, file_mode, dir_mode = WORK, parts[1:], 0o644, 0o755
            elif parts[0] == "tests":
                base, rel, file_mode, dir_mode = ROOT, parts, 0o600, 0o700
            elif len(parts) == 1 and parts[0] in ("job.json", "submission.ipynb") and member.isreg():
                base, rel, file_mode, dir_mode = ROOT, parts, 0o600, 0o700
            else:
                log("ignoring archive member", repr(name))
                continue
            if not rel:
                continue
            directory = base
            for part in rel[:-1]:
                directory = os.path.join(directory, part)
                make_dir(directory, dir_mode)
            target = os.path.join(directory, rel[-1])
            if member.isdir():
                make_dir(target, dir_mode)
                continue
            total += member.size
            if total > MAX_ARCHIVE_BYTES:
                raise JobError("internal", "the job archive is larger than %d MiB" % (MAX_ARCHIVE_BYTES >> 20))
            source = archive.extractfile(member)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, file_mode)
            try:
                os.fchmod(fd, file_mode)
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    write_all(fd, chunk)
            finally:
                os.close(fd)


def make_job_dirs():
    """The root-only job directory and the learner's working directory (idempotent)."""
    make_dir(ROOT, 0o700)
    os.makedirs(WORK, mode=0o755, exist_ok=True)
    os.chmod(WORK, 0o777)


def read_job():
    try:
        with open(os.path.join(ROOT, "job.json"), "rb") as f:
            job = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise JobError("internal", "job.json is missing from the job archive")
    except (ValueError, UnicodeDecodeError) as err:
        raise JobError("internal", "job.json is not valid JSON: %s" % err)
    if not isinstance(job, dict):
        raise JobError("internal", "job.json is not an object")
    policy = job.get("policy")
    if policy not in ("gofer", "otter"):
        raise JobError("internal", "job.json: unknown policy %r" % (policy,))
    timeout = job.get("timeoutSeconds")
    if not is_number(timeout) or not 0 < timeout <= 86400:
        raise JobError("internal", "job.json: timeoutSeconds must be a number of seconds, not %r" % (timeout,))
    uid = job.get("uid", 1000)
    if not isinstance(uid, int) or isinstance(uid, bool) or not 0 < uid < 2 ** 31:
        raise JobError("internal", "job.json: uid must be a positive integer (never 0), not %r" % (uid,))
    return {"policy": policy, "timeout": float(timeout), "uid": uid}


def read_nonce():
    try:
        with open(os.path.join(ROOT, "job.json"), "rb") as f:
            nonce = json.loads(f.read().decode("utf-8")).get("nonce")
    except Exception:
        return None
    if isinstance(nonce, str) and re.fullmatch(r"[A-Za-z0-9_.:+/=-]{1,200}", nonce):
        return nonce
    return None


# ---------------------------------------------------------------------------------------------
# 2. The notebook
# ---------------------------------------------------------------------------------------------

def parse_notebook_json():
    """The cheap checks (stdlib only), done before the kernel starts. Returns the text."""
    try:
        with open(os.path.join(ROOT, "submission.ipynb"), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise JobError("internal", "submission.ipynb is missing from the job archive")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Outcome("invalid_notebook", "The notebook is not UTF-8 text, so it is not a Jupyter notebook.")
    if not text.strip():
        raise Outcome("invalid_notebook", "The notebook file is empty.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise Outcome("invalid_notebook", "The notebook is not valid JSON (it is nested too deeply).")
    except ValueError as err:
        line, col = getattr(err, "lineno", None), getattr(err, "colno", None)
        where = " (line %d, column %d)" % (line, col) if line else ""
        raise Outcome("invalid_notebook", "The notebook is not valid JSON%s." % where)
    if not isinstance(data, dict):
        raise Outcome("invalid_notebook", "The notebook is not a JSON object, so it is not a Jupyter notebook.")
    version = data.get("nbformat")
    if version is None:
        raise Outcome("invalid_notebook", "The notebook has no nbformat version, so it is not a Jupyter notebook.")
    if version == 3:
        raise Outcome("invalid_notebook", "This is an nbformat 3 notebook; Gofer grades nbformat 4 notebooks "
                                          "(save it with Jupyter 4 or later).")
    if version != 4 or isinstance(version, bool):
        shown = version if isinstance(version, int) else json.dumps(version)[:40]
        raise Outcome("invalid_notebook", "This notebook says it is nbformat %s; Gofer grades nbformat 4 "
                                          "notebooks." % shown)
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise Outcome("invalid_notebook", "The notebook has no list of cells.")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise Outcome("invalid_notebook", "Cell %d of the notebook is not a valid cell." % number)
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            raise Outcome("invalid_notebook", "Cell %d of the notebook has no valid source text." % number)
    return text


def load_notebook(text):
    """nbformat's reading of the notebook, outputs dropped. Returns (nb, code cells as
    [(cell index, code cell number, cell)])."""
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises many kinds of errors for malformed notebooks
        reason = shorten(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, 200)
        raise Outcome("invalid_notebook", "The notebook could not be read as an nbformat 4 notebook (%s)." % reason)
    code = []
    number = 0
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        if not isinstance(source, str):
            raise Outcome("invalid_notebook", "Code cell %d of the notebook has no valid source text." % number)
        cell["source"] = source
        cell["outputs"] = []
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        tags = cell["metadata"].get("tags")
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            cell["metadata"]["tags"] = []
        code.append((index, number, cell))
    return nb, code


def cell_label(number, source):
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    if not first:
        return "code cell %d" % number
    return "code cell %d (`%s`)" % (number, shorten(first, 60))


# ---------------------------------------------------------------------------------------------
# 3. The instructor's tests
# ---------------------------------------------------------------------------------------------

class Case:
    __slots__ = ("name", "hidden", "points", "examples", "failure_message", "passed", "failure")

    def __init__(self, name, hidden, points, examples, failure_message):
        self.name = name
        self.hidden = hidden
        self.points = points
        self.examples = examples
        self.failure_message = failure_message
        self.passed = None  # None: not run
        self.failure = None  # text describing the first failing example (visible cases only)


class TestFile:
    def __init__(self, name, cases, all_or_nothing, setup=(), teardown=()):
        self.name = name
        self.cases = cases
        self.all_or_nothing = all_or_nothing
        self.setup = list(setup)  # sources run before each case, in the case's namespace
        self.teardown = list(teardown)  # and after it
        self.failed = False  # gofer: stop at the first failing case


def load_tests(policy):
    import doctest
    import textwrap

    directory = os.path.join(ROOT, "tests")
    try:
        names = [n for n in os.listdir(directory)
                 if n.endswith(".py") and not n.startswith(".") and n != "__init__.py"
                 and stat.S_ISREG(os.lstat(os.path.join(directory, n)).st_mode)]
    except FileNotFoundError:
        names = []
    if not names:
        raise JobError("tests", "tests/: there are no test files")
    names.sort(key=natural_key)
    parser = doctest.DocTestParser()
    files = []
    for filename in names:
        where = "tests/%s" % filename

        def bad(what):
            return JobError("tests", "%s: %s" % (where, what))

        try:
            with open(os.path.join(directory, filename), "rb") as f:
                source = f.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise bad("is not UTF-8 text")
        namespace = {"__name__": "__gofer_test__", "__file__": where, "__builtins__": __builtins__}
        try:
            exec(compile(source, where, "exec", dont_inherit=True), namespace)
        except SyntaxError as err:
            raise bad("has a syntax error on line %s: %s" % (err.lineno, err.msg))
        except BaseException as err:  # instructor code: report anything it raises
            raise bad("raised %s when it was run: %s" % (type(err).__name__, shorten(err, 300)))
        if "OK_FORMAT" in namespace and not namespace["OK_FORMAT"]:
            raise bad("sets OK_FORMAT to a false value; only OK-format test files are supported")
        test = namespace.get("test")
        if test is None:
            raise bad("defines no `test` dictionary (not an OK-format test file)")
        if not isinstance(test, dict):
            raise bad("`test` is a %s, not a dictionary" % type(test).__name__)
        stem = filename[:-3]
        name = test.get("name", stem)
        if not isinstance(name, str) or not name.strip():
            raise bad("`name` must be a non-empty string")
        name = shorten(name, 200)
        suites = test.get("suites")
        if not isinstance(suites, list) or len(suites) != 1:
            raise bad("must have exactly one suite in `suites` (it has %s)" %
                      (len(suites) if isinstance(suites, list) else "none"))
        suite = suites[0]
        if not isinstance(suite, dict):
            raise bad("its suite is not a dictionary")
        if suite.get("type", "doctest") != "doctest":
            raise bad("its suite has type %r; only doctest suites are supported" % (suite.get("type"),))
        around = {}
        for key in ("setup", "teardown"):
            value = suite.get(key) or ""
            if not isinstance(value, str):
                raise bad("its suite's %s must be a string" % key)
            around[key] = suite_code(parser, value, "%s %s" % (where, key), bad)
        raw_cases = suite.get("cases")
        if not isinstance(raw_cases, list) or not raw_cases:
            raise bad("its suite has no test cases")
        all_or_nothing = test.get("all_or_nothing", False)
        if not isinstance(all_or_nothing, (bool, int)):
            raise bad("`all_or_nothing` must be True or False")
        cases = []
        for i, raw in enumerate(raw_cases):
            label = "case %d" % (i + 1)
            if not isinstance(raw, dict):
                raise bad("%s is not a dictionary" % label)
            code = raw.get("code")
            if not isinstance(code, str):
                raise bad("%s has no `code` string" % label)
            if raw.get("locked"):
                raise bad("%s is locked (its outputs are hashed); unlock it first" % label)
            hidden = raw.get("hidden")
            if hidden is None:
                hidden = policy == "otter"  # otter: a case without `hidden` is hidden
            if not isinstance(hidden, (bool, int)):
                raise bad("%s: `hidden` must be True or False" % label)
            case_name = raw.get("name", "%s - %d" % (name, i + 1))
            if not isinstance(case_name, str):
                raise bad("%s: `name` must be a string" % label)
            failure_message = raw.get("failure_message")
            if failure_message is not None and not isinstance(failure_message, str):
                raise bad("%s: `failure_message` must be a string" % label)
            for key in ("success_message",):
                if raw.get(key) is not None and not isinstance(raw.get(key), str):
                    raise bad("%s: `%s` must be a string" % (label, key))
            points = raw.get("points")
            if policy == "otter" and points is not None and (not is_number(points) or points < 0):
                raise bad("%s: `points` must be a non-negative number" % label)
            try:
                examples = parser.get_examples(textwrap.dedent(code), "%s %s" % (where, label))
            except ValueError as err:
                raise bad("%s is not a valid doctest: %s" % (label, shorten(err, 300)))
            if not examples:
                raise bad("%s has no doctest examples (no lines starting with >>>)" % label)
            cases.append(Case(case_name, bool(hidden), points, examples, failure_message))
        if policy == "otter":
            resolve_points(test.get("points"), cases, bad)
        files.append(TestFile(name, cases, bool(all_or_nothing), around["setup"], around["teardown"]))
    return files


def suite_code(parser, text, where, bad):
    """A suite's setup or teardown as sources to run: its doctest examples (their outputs are not
    compared), or the text itself as code when it has no `>>>` lines."""
    import textwrap

    text = textwrap.dedent(text)
    if not text.strip():
        return []
    try:
        examples = parser.get_examples(text, where)
    except ValueError as err:
        raise bad("its %s is not a valid doctest: %s" % (where.rsplit(" ", 1)[-1], shorten(err, 300)))
    sources = [e.source for e in examples] or [text]
    for source in sources:
        try:
            compile(source, where, "exec", dont_inherit=True)
        except SyntaxError as err:
            raise bad("its %s has a syntax error on line %s: %s" % (where.rsplit(" ", 1)[-1], err.lineno, err.msg))
    return sources


def resolve_points(total, cases, bad):
    """otter's rules: a list gives one value per case; a number is the file's total, case points
    first and the rest split over the other cases; no total: 1 split over the cases when none
    has points, else the cases without points are worth 0."""
    if isinstance(total, (list, tuple)):
        if len(total) != len(cases):
            raise bad("`points` lists %d values for %d test cases" % (len(total), len(cases)))
        for value in total:
            if not is_number(value) or value < 0:
                raise bad("`points` must list non-negative numbers")
        for case, value in zip(cases, total):
            case.points = value
        return
    if total is not None and (not is_number(total) or total < 0):
        raise bad("`points` must be a non-negative number, a list of numbers, or absent")
    given = [c.points for c in cases if c.points is not None]
    unset = [c for c in cases if c.points is None]
    pre_specified = sum(given)
    if total is not None:
        if pre_specified > total:
            raise bad("its test cases are worth %g points, more than the test's `points` (%g)"
                      % (pre_specified, total))
        share = (total - pre_specified) / len(unset) if unset else 0.0
    elif pre_specified == 0:
        share = 1.0 / len(unset) if unset else 0.0
    else:
        share = 0.0
    for case in unset:
        case.points = share


# ---------------------------------------------------------------------------------------------
# 4. The zygote, and the processes it forks: the evaluator and the learner's kernel
# ---------------------------------------------------------------------------------------------
#
# Forked first, before the harness reads anything of the job (so it holds nothing of it), the
# zygote (root) imports the kernel's machinery and, once the harness has seen the tests and
# the notebook, the libraries they use (numpy, pandas). It then forks the evaluator and the
# kernel, which start with those libraries loaded instead of importing them twice. Learner
# code never runs in the zygote, and the zygote never reads the job.

ZYGOTE_IMPORTS = ("ipykernel.kernelapp",)


class Zygote:
    """The harness's end of its socket to the zygote: one JSON line per request and answer."""

    def __init__(self, process, sock):
        self.process = process
        self.sock = sock
        self.stream = sock.makefile("rb", buffering=0)

    @classmethod
    def start(cls):
        """A fresh interpreter running this source in the zygote's role. Not a fork: the
        harness's memory may already hold the start of the job (stdin's read-ahead)."""
        import socket
        import subprocess

        source = globals().get("HARNESS_SOURCE")
        if not isinstance(source, bytes):
            raise JobError("internal", "the harness was started without HARNESS_SOURCE (see docs/harness-protocol.md)")
        ours, theirs = socket.socketpair()
        env = dict(os.environ, GOFER_ZYGOTE_FD=str(theirs.fileno()))
        boot = "import sys;HARNESS_SOURCE=sys.stdin.buffer.read();exec(compile(HARNESS_SOURCE,'harness.py','exec'))"
        child = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 pass_fds=(theirs.fileno(),), env=env, cwd="/")
        theirs.close()
        child.stdin.write(source)
        child.stdin.close()
        return cls(child, ours)

    def ask(self, message, fds=()):
        import socket

        data = json.dumps(message).encode() + b"\n"
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)
        line = self.stream.readline()
        if not line:
            raise JobError("internal", "the zygote exited")
        answer = json.loads(line)
        if "error" in answer:
            raise JobError("internal", "the zygote could not %s: %s" % (message.get("op"), answer["error"]))
        return answer


def shared_matplotlib_dir():
    """Where matplotlib, imported here before any job (a pre-started container), finds the
    image's font cache: a root-owned copy the forked kernel can read. The image's own directory
    is read-only, and matplotlib would otherwise rebuild the cache in a fresh temporary one."""
    path = os.path.join(SCRATCH, "gofer-matplotlib")
    make_dir(path, 0o755)
    if st_owner(path) != 0:
        raise JobError("internal", "%s is not root's" % path)
    if os.path.isdir(FONT_CACHE):
        for name in os.listdir(FONT_CACHE):
            source = os.path.join(FONT_CACHE, name)
            if os.path.isfile(source):
                with open(source, "rb") as f:
                    write_file(os.path.join(path, name), f.read(), 0o644)
    return path


def st_owner(path):
    return os.lstat(path).st_uid


def zygote_main():
    import socket

    sock = socket.socket(fileno=int(os.environ.pop("GOFER_ZYGOTE_FD")))
    os.close(_RESULT_FD)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    try:
        zygote_process(sock)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(0)


def zygote_process(sock):
    import socket

    for module in ZYGOTE_IMPORTS:
        try:
            importlib.import_module(module)
        except ImportError as err:
            log("zygote: cannot import", module, err)
    statuses = {}

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            statuses[pid] = os.waitstatus_to_exitcode(status)

    def fork(child):
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                child()
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(70)
        return pid

    def answer(message):
        sock.sendall(json.dumps(message).encode() + b"\n")

    pending = b""
    fds = []
    while True:
        while b"\n" not in pending:
            data, more, _, _ = socket.recv_fds(sock, 1 << 16, 4)
            if not data:
                return
            pending += data
            fds += more
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            request = json.loads(line)
            op = request.get("op")
            try:
                if op == "warm":
                    if any(m.split(".")[0] == "matplotlib" for m in request["modules"]):
                        os.environ["MPLCONFIGDIR"] = shared_matplotlib_dir()
                    for module in request["modules"]:
                        try:
                            importlib.import_module(module)
                        except ImportError:
                            pass
                    answer({"ok": True})
                elif op == "evaluator":
                    link = socket.socket(fileno=fds.pop(0))
                    pid = fork(lambda: evaluator_process(link, request["directory"], request["path"], request["uid"]))
                    link.close()
                    answer({"pid": pid})
                elif op == "kernel":
                    pid = fork(lambda: become_learner_kernel(request))
                    answer({"pid": pid})
                elif op == "status":
                    reap()
                    pid = request["pid"]
                    answer({"exited": pid in statuses, "code": statuses.get(pid)})
                else:
                    answer({"error": "unknown request %r" % (op,)})
            except Exception as err:
                answer({"error": "%s: %s" % (type(err).__name__, err)})


def become_learner_kernel(spec):
    """In a child of the zygote (still root): reads the connection file, drops to the learner's
    uid for good, and becomes the IPython kernel. Never returns."""
    uid = spec["uid"]
    with open(spec["connection"], "rb") as f:
        info = f.read()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    os.setsid()
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
        sys.stderr.write("gofer kernel: could not drop privileges\n")
        os._exit(71)
    try:
        os.setuid(0)
    except OSError:
        pass
    else:
        sys.stderr.write("gofer kernel: setuid(0) still works\n")
        os._exit(72)
    # An exec'd process would be dumpable again; a forked one that changed uid is not, which
    # makes its own /proc/self/{fd,mem,environ} root's. Learner code (and libraries that list
    # /proc/self/fd) expects them to be its own, as in any kernel. It holds no secret to guard.
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE 1
    os.umask(0o022)
    home = spec["home"]
    try:
        os.mkdir(home, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(home)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
        import tempfile
        home = tempfile.mkdtemp(prefix="home-", dir=os.path.dirname(home))
    kernel_file = os.path.join(home, ".gofer-kernel.json")
    fd = os.open(kernel_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.write(fd, info)
    os.close(fd)
    mpl = os.path.join(home, ".config", "matplotlib")
    os.makedirs(mpl, exist_ok=True)
    fonts = spec["fonts"]
    if fonts and os.path.isdir(fonts):
        for name in os.listdir(fonts):
            source = os.path.join(fonts, name)
            try:
                if os.path.isfile(source):
                    with open(source, "rb") as src, open(os.path.join(mpl, name), "wb") as dst:
                        dst.write(src.read())
            except OSError:
                pass
    shim = spec["shim"]
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("GOFER_") and not k.startswith("JUPYTER_"))
    env["HOME"] = home
    env["IPYTHONDIR"] = os.path.join(home, ".ipython")
    env["MPLCONFIGDIR"] = mpl
    env["PYTHONPATH"] = shim + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    try:
        import pwd
        user = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        user = "learner"
    env["USER"] = env["LOGNAME"] = user
    os.environ.clear()
    os.environ.update(env)
    os.chdir(spec["work"])
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.closerange(3, 65536)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # What `python -m ipykernel_launcher` would have: the working directory first, the shims next.
    sys.path[:] = ["", shim] + [p for p in sys.path if p and p != shim]
    sys.argv = ["ipykernel_launcher", "-f", kernel_file, "--HistoryManager.hist_file=:memory:",
                "--IPKernelApp.outstream_class=_gofer_stream.stream"]
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=sys.argv[1:])
    os._exit(0)


OTTER_SHIM = '''"""Stand-in for otter-grader in Gofer's grader: checks run when the notebook is graded."""


def _nothing(*args, **kwargs):
    return None


class Notebook:
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _nothing


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _nothing
'''

# The kernel's sys.stdout and sys.stderr (IPKernelApp.outstream_class): /dev/null, so what the
# notebook prints is dropped at once, before any buffer or message holds it.
STREAM_SHIM = '''"""Gofer's grader: the kernel's stdout and stderr go nowhere (outputs are not graded)."""
import os


def stream(*args, **kwargs):
    return open(os.devnull, "w", encoding="utf-8", errors="replace")
'''

GOFER_SHIM = '''"""Stand-in for Gofer-Grader in Gofer's grader: checks run when the notebook is graded."""
'''

GOFER_OK_SHIM = '''"""Stand-in for gofer.ok in Gofer's grader: checks run when the notebook is graded."""


def check(*args, **kwargs):
    return None


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return check
'''


def prepare_kernel_files():
    """Writes the learner-readable shim modules and the kernel's connection file (root only).
    Returns (shim directory, connection file path)."""
    from jupyter_client.connect import write_connection_file

    kernel_dir = os.path.join(ROOT, "kernel")
    make_dir(kernel_dir, 0o700)
    shim = os.path.join(SCRATCH, "gofer-shim")
    if os.path.lexists(shim):
        import shutil
        shutil.rmtree(shim)
    make_dir(shim, 0o755)
    make_dir(os.path.join(shim, "otter"), 0o755)
    write_file(os.path.join(shim, "otter", "__init__.py"), OTTER_SHIM.encode(), 0o644)
    make_dir(os.path.join(shim, "gofer"), 0o755)
    write_file(os.path.join(shim, "gofer", "__init__.py"), GOFER_SHIM.encode(), 0o644)
    write_file(os.path.join(shim, "gofer", "ok.py"), GOFER_OK_SHIM.encode(), 0o644)
    write_file(os.path.join(shim, "_gofer_stream.py"), STREAM_SHIM.encode(), 0o644)
    connection = os.path.join(kernel_dir, "connection.json")
    write_connection_file(connection, ip="127.0.0.1", transport="tcp", key=secrets.token_hex(32).encode(),
                          signature_scheme="hmac-sha256", kernel_name="gofer")
    return shim, connection


def font_cache():
    fonts = os.environ.get("MPLCONFIGDIR") or FONT_CACHE
    if not os.path.isdir(fonts):
        fonts = FONT_CACHE if os.path.isdir(FONT_CACHE) else ""
    return fonts


def cgroup_dirs():
    """The memory cgroup directories to look at: this process's own (when visible), then the
    mount root (the container's own cgroup inside a container)."""
    found = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        if fields[1] == "" and fields[0] == "0":
            found.append(("v2", "/sys/fs/cgroup" + fields[2].rstrip("/")))
        elif "memory" in fields[1].split(","):
            found.append(("v1", "/sys/fs/cgroup/memory" + fields[2].rstrip("/")))
    found += [("v2", "/sys/fs/cgroup"), ("v1", "/sys/fs/cgroup/memory")]
    return [(kind, path) for kind, path in found
            if os.path.exists(os.path.join(path, "memory.events" if kind == "v2" else "memory.oom_control"))]


def read_oom_kills():
    for kind, path in cgroup_dirs():
        name = "memory.events" if kind == "v2" else "memory.oom_control"
        try:
            with open(os.path.join(path, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def memory_limit_text():
    for kind, path in cgroup_dirs():
        name = "memory.max" if kind == "v2" else "memory.limit_in_bytes"
        try:
            with open(os.path.join(path, name)) as f:
                value = f.read().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < (1 << 50):
            size = int(value)
            if size >= 1 << 30:
                return ("%.1f" % (size / (1 << 30))).rstrip("0").rstrip(".") + " GB"
            return "%d MB" % (size >> 20)
    return None


def kill_learner_processes(uid):
    """SIGKILLs every process of the learner's uid. The harness has no CAP_KILL, so a child
    takes the learner's uid to do it (kill(-1) spares the caller itself and pid 1)."""
    try:
        pid = os.fork()
    except OSError as err:
        log("cannot fork to kill the learner's processes:", err)
        return
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:
            pass
        os._exit(0)
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


# The value codec shared by both ends of the channel (one source, executed on each side).
# A value crosses as tagged JSON. Plain data (None, bool, int, float, complex, str, bytes,
# tuple, list, dict, set, frozenset, numpy arrays and scalars, pandas Series, DataFrame and
# Index) crosses as data; anything else crosses as a handle that `handle_of` makes and
# `from_handle` turns back into an object. Decoding only builds containers and calls numpy's
# and pandas' constructors on checked input: it never unpickles or evaluates anything.
CODEC = r'''
import base64 as _b64
import sys as _sys

MAX_DEPTH = 64
MAX_ITEMS = 2000000
_NUMPY_KINDS = "biufcSUMm"
_PANDAS_DTYPES = frozenset(["category", "string", "boolean", "Int8", "Int16", "Int32", "Int64",
                            "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"])


class CodecError(Exception):
    """A value that cannot cross (too deep, too large, or not well formed)."""


class _Budget:
    __slots__ = ("items",)

    def __init__(self):
        self.items = 0

    def take(self, n=1):
        self.items += n
        if self.items > MAX_ITEMS:
            raise CodecError("it holds more than %d values" % MAX_ITEMS)


def _b(data):
    return _b64.b64encode(bytes(data)).decode("ascii")


def _unb(text):
    if not isinstance(text, str):
        raise CodecError("bytes are not base64 text")
    try:
        return _b64.b64decode(text.encode("ascii"), validate=True)
    except Exception:
        raise CodecError("bytes are not base64 text")


def encode(value, handle_of, depth=0, budget=None):
    budget = budget or _Budget()
    budget.take()
    if depth > MAX_DEPTH:
        raise CodecError("it is nested more than %d levels deep" % MAX_DEPTH)
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(1 << 53) < value < (1 << 53) else {"i": str(value)}
    if t is float:
        return {"f": repr(value)}
    if t is complex:
        return {"c": [repr(value.real), repr(value.imag)]}
    if t is bytes:
        return {"b": _b(value)}
    if t is list:
        return [encode(v, handle_of, depth + 1, budget) for v in value]
    if t is tuple:
        return {"t": [encode(v, handle_of, depth + 1, budget) for v in value]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, handle_of, depth + 1, budget) for v in value]}
    if t is dict:
        return {"d": [[encode(k, handle_of, depth + 1, budget), encode(v, handle_of, depth + 1, budget)]
                      for k, v in value.items()]}
    module = getattr(t, "__module__", "") or ""
    if module.startswith("numpy") and "numpy" in _sys.modules:
        np = _sys.modules["numpy"]
        if t is np.ndarray:
            return _encode_array(np, value, handle_of, depth, budget)
        if isinstance(value, np.generic) and value.dtype.kind in _NUMPY_KINDS:
            return {"ns": [value.dtype.str, _b(value.tobytes())]}
    if module.startswith("pandas") and "pandas" in _sys.modules:
        encoded = _encode_pandas(_sys.modules["pandas"], value, handle_of, depth, budget)
        if encoded is not None:
            return encoded
    return handle_of(value)


def _encode_array(np, value, handle_of, depth, budget):
    dtype = value.dtype
    if dtype.kind == "O":
        budget.take(value.size)
        items = [encode(v, handle_of, depth + 1, budget) for v in value.ravel().tolist()]
        return {"nd": ["O", list(value.shape), items]}
    if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        return handle_of(value)
    budget.take(value.size // 8)
    return {"nd": [dtype.str, list(value.shape), _b(np.ascontiguousarray(value).tobytes())]}


def _encode_pandas(pd, value, handle_of, depth, budget):
    def enc(v):
        return encode(v, handle_of, depth + 1, budget)

    def column(values, dtype):
        name = str(dtype)
        if name in _PANDAS_DTYPES or name.startswith("datetime64[ns, "):
            return [name, enc(values.astype(object).to_numpy() if hasattr(values, "astype") else values)]
        return [name, enc(values.to_numpy() if hasattr(values, "to_numpy") else values)]

    t = type(value)
    if t is pd.RangeIndex:
        return {"pr": [value.start, value.stop, value.step, enc(value.name)]}
    if t is pd.MultiIndex:
        return {"pm": [enc(list(value)), enc(list(value.names))]}
    if t is pd.Index or (isinstance(value, pd.Index) and t.__name__ in
                         ("Int64Index", "Float64Index", "UInt64Index", "DatetimeIndex", "CategoricalIndex")):
        return {"pi": [column(value, value.dtype), enc(value.name)]}
    if t is pd.Series:
        return {"pse": [column(value, value.dtype), enc(value.index), enc(value.name)]}
    if t is pd.DataFrame:
        columns = [column(value.iloc[:, i], value.dtypes.iloc[i]) for i in range(value.shape[1])]
        return {"pdf": [columns, enc(value.index), enc(value.columns)]}
    if t is pd.Timestamp:
        return {"pts": [value.value, enc(None if value.tz is None else str(value.tz))]}
    return None


def decode(tree, from_handle, depth=0, budget=None):
    budget = budget or _Budget()
    budget.take()
    if depth > MAX_DEPTH + 4:
        raise CodecError("it is nested more than %d levels deep" % MAX_DEPTH)
    if tree is None or isinstance(tree, (bool, str)):
        return tree
    if type(tree) is int:
        return tree
    if isinstance(tree, list):
        return [decode(v, from_handle, depth + 1, budget) for v in tree]
    if not isinstance(tree, dict) or len(tree) < 1:
        raise CodecError("a value is not well formed")
    if "h" in tree:
        return from_handle(tree)
    if len(tree) != 1:
        raise CodecError("a value is not well formed")
    (tag, body), = tree.items()

    def dec(v):
        return decode(v, from_handle, depth + 1, budget)

    def items(v):
        if not isinstance(v, list):
            raise CodecError("a container is not well formed")
        return [dec(x) for x in v]

    try:
        if tag == "i":
            return int(body)
        if tag == "f":
            return float(body)
        if tag == "c":
            return complex(float(body[0]), float(body[1]))
        if tag == "b":
            return _unb(body)
        if tag == "t":
            return tuple(items(body))
        if tag == "s":
            return set(items(body))
        if tag == "fs":
            return frozenset(items(body))
        if tag == "d":
            if not isinstance(body, list):
                raise CodecError("a dict is not well formed")
            out = {}
            for pair in body:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise CodecError("a dict is not well formed")
                out[dec(pair[0])] = dec(pair[1])
            return out
        if tag in ("nd", "ns"):
            return _decode_numpy(tag, body, dec, budget)
        if tag in ("pr", "pm", "pi", "pse", "pdf", "pts"):
            return _decode_pandas(tag, body, dec)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as err:
        raise CodecError("a %s value is not well formed (%s)" % (tag, type(err).__name__))
    raise CodecError("a value has an unknown tag")


def _dtype(np, text):
    if not isinstance(text, str) or len(text) > 40:
        raise CodecError("an array's dtype is not well formed")
    dtype = np.dtype(text)
    if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CodecError("an array has an unsupported dtype")
    return dtype


def _decode_numpy(tag, body, dec, budget):
    import numpy as np
    if tag == "ns":
        dtype = _dtype(np, body[0])
        data = _unb(body[1])
        if len(data) != dtype.itemsize:
            raise CodecError("a numpy scalar is not well formed")
        return np.frombuffer(data, dtype=dtype)[0]
    text, shape, payload = body
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
        raise CodecError("an array's shape is not well formed")
    size = 1
    for n in shape:
        size *= n
    if text == "O":
        values = [dec(v) for v in payload] if isinstance(payload, list) else None
        if values is None or len(values) != size:
            raise CodecError("an object array is not well formed")
        out = np.empty(size, dtype=object)
        for i, v in enumerate(values):
            out[i] = v
        return out.reshape(shape)
    dtype = _dtype(np, text)
    data = _unb(payload)
    if len(data) != size * dtype.itemsize:
        raise CodecError("an array's data does not match its shape")
    budget.take(size // 8)
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _decode_pandas(tag, body, dec):
    import pandas as pd

    def column(spec):
        name, values = spec
        values = dec(values)
        if name in _PANDAS_DTYPES:
            return pd.array(list(values), dtype=name)
        if isinstance(name, str) and name.startswith("datetime64[ns, "):
            return pd.DatetimeIndex(list(values))
        return values

    if tag == "pr":
        return pd.RangeIndex(int(body[0]), int(body[1]), int(body[2]), name=dec(body[3]))
    if tag == "pm":
        return pd.MultiIndex.from_tuples(dec(body[0]), names=dec(body[1]))
    if tag == "pi":
        return pd.Index(column(body[0]), name=dec(body[1]))
    if tag == "pse":
        return pd.Series(column(body[0]), index=dec(body[1]), name=dec(body[2]))
    if tag == "pts":
        return pd.Timestamp(int(body[0]), tz=dec(body[1]))
    columns, index, names = body
    names = dec(names)
    data = [column(spec) for spec in columns]
    if len(data) != len(names):
        raise CodecError("a DataFrame is not well formed")
    frame = pd.DataFrame(dict((i, v) for i, v in enumerate(data)), index=dec(index))
    frame.columns = names
    return frame
'''


# The notebook's end of the channel, started in the kernel (as the learner) after the notebook
# ran: it connects to the trusted evaluator's socket, snapshots the notebook's globals and
# answers requests until told to stop. It is learner-controlled like everything in the kernel:
# nothing it says is trusted beyond being data, and it never sees a test's source or expected
# output, only the names tests read and the operations they perform on the notebook's objects.
AGENT = r'''
def serve(user_ns, path, own_names, output_limit):
    import builtins, io, json, operator, socket, struct, sys, traceback

    snapshot = dict((k, v) for k, v in user_ns.items() if k not in own_names)
    objects = {}
    ids = {}

    def handle_of(value):
        key = id(value)
        number = ids.get(key)
        if number is None or objects.get(number) is not value:
            number = len(objects) + 1
            objects[number] = value
            ids[key] = number
        t = type(value)
        info = {"h": number, "type": getattr(t, "__qualname__", "object"), "module": getattr(t, "__module__", "")}
        if isinstance(value, type(sys)):
            info["m"] = getattr(value, "__name__", "")
        if isinstance(value, type) and issubclass(value, BaseException):
            info["exc"] = [value.__module__, value.__qualname__, [b.__name__ for b in value.__mro__ if b.__module__ == "builtins"]]
        return info

    def from_handle(tree):
        number = tree.get("h")
        if number not in objects:
            raise LookupError("unknown handle")
        return objects[number]

    send_lock = []
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)

    def recv_exact(n):
        chunks = []
        while n:
            chunk = conn.recv(min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def send(obj):
        data = json.dumps(obj, separators=(",", ":")).encode("utf-8", "surrogatepass")
        conn.sendall(struct.pack(">I", len(data)) + data)

    ops = {
        "getattr": lambda a: getattr(a[0], a[1]),
        "setattr": lambda a: setattr(a[0], a[1], a[2]),
        "delattr": lambda a: delattr(a[0], a[1]),
        "call": lambda a: a[0](*a[1], **a[2]),
        "getitem": lambda a: a[0][a[1]],
        "setitem": lambda a: operator.setitem(a[0], a[1], a[2]),
        "delitem": lambda a: operator.delitem(a[0], a[1]),
        "len": lambda a: len(a[0]),
        "iter": lambda a: iter(a[0]),
        "next": lambda a: next(a[0]),
        "repr": lambda a: repr(a[0]),
        "str": lambda a: str(a[0]),
        "bool": lambda a: bool(a[0]),
        "hash": lambda a: hash(a[0]),
        "contains": lambda a: a[1] in a[0],
        "format": lambda a: format(a[0], a[1]),
        "dir": lambda a: dir(a[0]),
        "isinstance": lambda a: isinstance(a[0], a[1]),
        "issubclass": lambda a: issubclass(a[0], a[1]),
        "int": lambda a: int(a[0]),
        "float": lambda a: float(a[0]),
        "complex": lambda a: complex(a[0]),
        "index": lambda a: operator.index(a[0]),
        "round": lambda a: round(*a),
        "op": lambda a: getattr(operator, a[0])(*a[1:]),
        "value": lambda a: a[0],
    }
    allowed_operators = frozenset(["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
                                   "lshift", "rshift", "and_", "or_", "xor", "eq", "ne", "lt", "le",
                                   "gt", "ge", "neg", "pos", "abs", "invert"])

    while True:
        try:
            size = struct.unpack(">I", recv_exact(4))[0]
            request = json.loads(recv_exact(size).decode("utf-8", "surrogatepass"))
        except (EOFError, OSError):
            return
        number = request.get("n")
        op = request.get("op")
        if op == "bye":
            return
        buffer = io.StringIO()
        saved = sys.stdout
        sys.stdout = buffer
        reply = {"n": number}
        try:
            if op == "globals":
                found = {}
                for name in request["names"]:
                    if name in snapshot:
                        found[name] = snapshot[name]
                result = found
            else:
                args = decode(request.get("args"), from_handle)
                if op == "op" and args[0] not in allowed_operators:
                    raise ValueError("unknown operator")
                result = ops[op](args)
            reply["ok"] = encode(result, handle_of)
        except KeyboardInterrupt:
            reply["interrupted"] = True
        except CodecError as err:
            reply["raise"] = {"codec": str(err)}
        except BaseException as err:
            try:
                detail = traceback.format_exception_only(type(err), err)[-1]
            except BaseException:
                detail = type(err).__name__ + "\n"
            try:
                args = encode(err.args, handle_of)
            except BaseException:
                args = None
            reply["raise"] = {"cls": handle_of(type(err)), "args": args, "text": str(detail)[:output_limit]}
        finally:
            sys.stdout = saved
        try:
            out = buffer.getvalue()
        except BaseException:
            out = ""
        if out:
            reply["out"] = out[:output_limit]
        try:
            send(reply)
        except (CodecError, TypeError, ValueError, RecursionError) as err:
            send({"n": number, "raise": {"cls": handle_of(type(err)), "args": None, "text": "%s: the value could not be sent\n" % type(err).__name__}})
        except OSError:
            return
'''


# ---------------------------------------------------------------------------------------------
# 5. The trusted evaluator: where test code runs
# ---------------------------------------------------------------------------------------------
#
# A child of the harness, forked before the kernel starts, running as EVALUATOR_UID (not the
# learner's uid), not dumpable (so not ptrace-able and its /proc files are root's), with stdio of
# its own. The harness sends it one case at a time (the examples' sources, never the expected
# outputs); it runs them in a namespace of its own and reads the notebook's final globals only
# through the agent in the kernel (AGENT), over a unix socket, with values crossing by CODEC.

EVALUATOR_UID = 1001
MAX_FRAME = 64 * 1024 * 1024
# Builtin names a test uses are the evaluator's own, never a notebook global of that name.
TRUSTED_MODULES = frozenset(["numpy", "pandas", "math", "cmath", "statistics", "collections", "itertools",
                             "functools", "operator", "string", "re", "json", "datetime", "decimal",
                             "fractions", "scipy", "matplotlib", "matplotlib.pyplot", "numpy.testing",
                             "numpy.linalg", "numpy.random", "os.path", "typing"])


class CaseTimeLimit(BaseException):
    """The case ran past its time limit (raised in the evaluator, never in learner code)."""


class KernelStuck(Exception):
    """The kernel did not answer even after it was interrupted."""


class ChannelClosed(Exception):
    """The agent's end of the channel went away (the kernel died or closed it)."""


def read_frame(sock, wait_until):
    """One length-prefixed frame (bytes), or CodecError after draining one that is too large."""
    header = recv_exact(sock, 4, wait_until)
    size = int.from_bytes(header, "big")
    if size > MAX_FRAME:
        while size:
            size -= len(recv_exact(sock, min(size, 1 << 20), wait_until))
        raise CODEC_NS["CodecError"]("it is larger than %d MB" % (MAX_FRAME >> 20))
    return recv_exact(sock, size, wait_until)


def recv_exact(sock, n, wait_until):
    chunks = []
    while n:
        sock.settimeout(max(0.001, wait_until - time.monotonic()))
        try:
            chunk = sock.recv(min(n, 1 << 20))
        except TimeoutError:
            raise KernelStuck()
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Channel:
    """The evaluator's end: requests to the agent, answers decoded into data or Remote handles."""

    def __init__(self, conn, tell_harness):
        self.conn = conn
        self.tell_harness = tell_harness
        self.number = 0
        self.deadline = None
        self.busy = False
        self.remotes = {}
        self.exception_classes = {}

    def request(self, op, args=None, names=None):
        codec = CODEC_NS
        self.number += 1
        message = {"n": self.number, "op": op}
        if names is not None:
            message["names"] = names
        else:
            try:
                message["args"] = codec["encode"](args, self.handle_of)
            except codec["CodecError"] as err:
                raise ValueError("a test value could not be sent to the notebook: %s" % err)
        data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
        self.busy = True
        try:
            self.conn.sendall(len(data).to_bytes(4, "big") + data)
            reply, late = self.wait(self.number)
        finally:
            self.busy = False
        out = reply.get("out")
        if isinstance(out, str) and out:
            sys.stdout.write(out)
        if late:
            raise CaseTimeLimit()
        if reply.get("interrupted"):
            raise KeyboardInterrupt()
        if "raise" in reply:
            raise self.exception(reply["raise"])
        return codec["decode"](reply.get("ok"), self.from_handle)

    def wait(self, number):
        """The reply to request `number` and whether the case's time ran out meanwhile (then the
        kernel was interrupted, and the reply is only awaited to keep the channel in step)."""
        interrupted = False
        while True:
            limit = self.deadline if self.deadline is not None and not interrupted else time.monotonic() + 3600
            if interrupted:
                limit = interrupted
            ready = select.select([self.conn], [], [], max(0.0, min(limit - time.monotonic(), 1.0)))[0]
            if not ready:
                if time.monotonic() < limit:
                    continue
                if interrupted:
                    raise KernelStuck()
                self.tell_harness({"interrupt": True})
                interrupted = time.monotonic() + INTERRUPT_GRACE
                continue
            try:
                frame = read_frame(self.conn, time.monotonic() + INTERRUPT_GRACE)
                reply = json.loads(frame.decode("utf-8", "surrogatepass"))
            except CODEC_NS["CodecError"] as err:
                reply = {"n": number, "raise": {"codec": str(err)}}
            except (ValueError, RecursionError):
                reply = {"n": number, "raise": {"codec": "it is not well formed"}}
            if not isinstance(reply, dict):
                reply = {"n": number, "raise": {"codec": "it is not well formed"}}
            if reply.get("n") != number:
                continue
            return reply, bool(interrupted)

    def handle_of(self, value):
        if type(value) is Remote:
            return {"h": object.__getattribute__(value, "_gofer_id")}
        number = next((n for n, cls in self.exception_classes.items() if cls is value), None)
        if number is not None:
            return {"h": number}
        raise TypeError("a test cannot pass a %s to the notebook" % type(value).__name__)

    def from_handle(self, tree):
        number = tree.get("h")
        if type(number) is not int:
            raise CODEC_NS["CodecError"]("a handle is not well formed")
        module = tree.get("m")
        if isinstance(module, str) and module in TRUSTED_MODULES:
            try:
                return importlib.import_module(module)
            except ImportError:
                pass
        exc = tree.get("exc")
        if isinstance(exc, list) and len(exc) == 3:
            return self.exception_class(number, exc)
        remote = self.remotes.get(number)
        if remote is None:
            remote = self.remotes[number] = Remote(self, number, tree)
        return remote

    def exception_class(self, number, spec):
        import builtins

        cls = self.exception_classes.get(number)
        if cls is not None:
            return cls
        module, qualname, bases = spec
        builtin = getattr(builtins, qualname, None) if module == "builtins" else None
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            cls = builtin
        else:
            base = next((getattr(builtins, b) for b in (bases if isinstance(bases, list) else [])
                         if isinstance(b, str) and isinstance(getattr(builtins, b, None), type)
                         and issubclass(getattr(builtins, b), Exception)), Exception)
            name = str(qualname).rsplit(".", 1)[-1] or "Error"
            try:
                cls = type(name, (base,), {"__module__": str(module), "__qualname__": str(qualname)})
            except TypeError:
                cls = type(name, (Exception,), {"__module__": str(module), "__qualname__": str(qualname)})
        self.exception_classes[number] = cls
        return cls

    def exception(self, info):
        if not isinstance(info, dict):
            info = {}
        if "codec" in info:
            return ValueError("the notebook's value cannot be read by the tests: %s" % info["codec"])
        try:
            cls = self.from_handle(info["cls"]) if isinstance(info.get("cls"), dict) else Exception
        except Exception:
            cls = Exception
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            cls = Exception
        try:
            args = CODEC_NS["decode"](info.get("args"), self.from_handle) if info.get("args") is not None else None
        except Exception:
            args = None
        if not isinstance(args, tuple):
            text = info.get("text") if isinstance(info.get("text"), str) else ""
            args = (text.split(": ", 1)[1].rstrip("\n") if ": " in text else "",)
        try:
            return cls(*args)
        except Exception:
            return Exception(*args)


def _remote_op(name):
    def method(self, *args):
        return object.__getattribute__(self, "_gofer_channel").request(name, (self,) + args)
    method.__name__ = "__%s__" % name
    return method


def _remote_operator(name, reflected=False):
    def method(self, *args):
        channel = object.__getattribute__(self, "_gofer_channel")
        operands = (args[0], self) if reflected else (self,) + args
        try:
            return channel.request("op", (name,) + operands)
        except TypeError:
            return NotImplemented
    return method


# Attributes through which numpy and other libraries would read or write raw memory at an
# address the object names: a notebook's answer for them would point the evaluator's own numpy
# at the evaluator's memory. A handle never has them.
RAW_MEMORY_ATTRIBUTES = frozenset(["__array_interface__", "__array_struct__", "__cuda_array_interface__",
                                   "__dlpack__", "__dlpack_device__"])


class Remote:
    """An object that stays in the notebook's kernel: every use is a request to the agent."""

    __slots__ = ("_gofer_channel", "_gofer_id", "_gofer_info", "__weakref__")

    def __init__(self, channel, number, info):
        object.__setattr__(self, "_gofer_channel", channel)
        object.__setattr__(self, "_gofer_id", number)
        object.__setattr__(self, "_gofer_info", info)

    def __getattr__(self, name):
        if name in RAW_MEMORY_ATTRIBUTES:
            raise AttributeError(name)
        return object.__getattribute__(self, "_gofer_channel").request("getattr", (self, name))

    def __setattr__(self, name, value):
        object.__getattribute__(self, "_gofer_channel").request("setattr", (self, name, value))

    def __delattr__(self, name):
        object.__getattribute__(self, "_gofer_channel").request("delattr", (self, name))

    def __call__(self, *args, **kwargs):
        return object.__getattribute__(self, "_gofer_channel").request("call", (self, args, kwargs))

    def __instancecheck__(self, obj):
        return object.__getattribute__(self, "_gofer_channel").request("isinstance", (obj, self))

    def __subclasscheck__(self, cls):
        return object.__getattribute__(self, "_gofer_channel").request("issubclass", (cls, self))


# Requests that take the handle first, then the operation's arguments as given.
for _name in ("getitem", "setitem", "delitem", "len", "iter", "next", "repr", "str", "bool", "hash",
              "contains", "format", "dir", "int", "float", "complex", "index", "round"):
    setattr(Remote, "__%s__" % _name, _remote_op(_name))
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lshift", "rshift",
              "and", "or", "xor"):
    _op = _name + "_" if _name in ("and", "or") else _name
    setattr(Remote, "__%s__" % _name, _remote_operator(_op))
    setattr(Remote, "__r%s__" % _name, _remote_operator(_op, reflected=True))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(Remote, "__%s__" % _name, _remote_operator(_name))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Remote, "__%s__" % _name, _remote_operator(_name))
del _name, _op


class CappedText:
    """A text stream that keeps at most `limit` characters and remembers whether it cut."""

    def __init__(self, limit):
        self.parts = []
        self.size = 0
        self.limit = limit
        self.cut = False

    def write(self, text):
        text = str(text)
        room = self.limit - self.size
        if len(text) > room:
            self.cut = True
            text = text[:max(0, room)]
        if text:
            self.parts.append(text)
            self.size += len(text)
        return len(text)

    def flush(self):
        pass

    def getvalue(self):
        return "".join(self.parts)


def global_names(code):
    """The global names a compiled test reads, in its nested functions and comprehensions too."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, type(code)):
            names |= global_names(const)
    return names


def evaluate_case(channel, spec):
    """Runs one case's sources (setup, examples, teardown) and returns the examples' results."""
    import builtins

    limit = spec["limit"]
    deadline = time.monotonic() + limit
    channel.deadline = deadline
    compiled = []
    names = set()
    for kind in ("setup", "examples", "teardown"):
        for source in spec.get(kind) or []:
            try:
                code = compile(source, "<test>", "single" if kind == "examples" else "exec", dont_inherit=True)
            except SyntaxError as err:
                code = err
            else:
                names |= global_names(code)
            compiled.append((kind, code))
    wanted = sorted(n for n in names if not hasattr(builtins, n) and not n.startswith("__"))
    namespace = {"__builtins__": builtins, "__name__": "__main__"}
    results = []
    problem = None

    def on_alarm(signum, frame):
        if not channel.busy:
            raise CaseTimeLimit()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        try:
            found = channel.request("globals", names=wanted) if wanted else {}
            if not isinstance(found, dict):
                raise ValueError("the notebook's globals could not be read")
            namespace.update((k, v) for k, v in found.items() if isinstance(k, str) and k in names)
        except (KernelStuck, ChannelClosed):
            raise
        except CaseTimeLimit:
            problem = {"out": "", "cut": False, "exc": None, "timeout": True}
        except BaseException as err:
            problem = {"out": "", "cut": False, "exc": exception_lines(err)}
        budget = CASE_OUTPUT_LIMIT
        for kind, code in compiled:
            if problem is not None:
                if kind == "examples":
                    results.append(problem)
                continue
            stream = CappedText(max(0, min(EXAMPLE_OUTPUT_LIMIT, budget)))
            exc, timed_out = run_source(code, namespace, stream)
            budget -= stream.size
            if kind == "setup":
                if timed_out:
                    problem = {"out": "", "cut": False, "exc": None, "timeout": True}
                elif exc is not None:
                    problem = {"out": "", "cut": False, "exc": ["The test's setup raised " + exc[-1]]}
            elif kind == "examples":
                result = {"out": stream.getvalue(), "cut": stream.cut, "exc": exc}
                if timed_out:
                    result["timeout"] = True
                    problem = result
                results.append(result)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        channel.deadline = None
    return results


def run_source(code, namespace, stream):
    """Executes one compiled source with its output (prints and shown values) going to `stream`.
    Returns (exception lines or None, whether the case's time ran out)."""
    saved = sys.stdout, sys.displayhook

    def show(value):
        if value is not None:
            stream.write(repr(value) + "\n")

    sys.stdout = stream
    sys.displayhook = show
    try:
        if isinstance(code, SyntaxError):
            raise code
        exec(code, namespace)
    except (KernelStuck, ChannelClosed):
        raise
    except CaseTimeLimit:
        return None, True
    except BaseException as err:
        return exception_lines(err), False
    finally:
        sys.stdout, sys.displayhook = saved
    return None, False


def exception_lines(err):
    try:
        return [str(line)[:EXAMPLE_OUTPUT_LIMIT] for line in traceback.format_exception_only(type(err), err)]
    except BaseException:
        return [type(err).__name__ + "\n"]


CODEC_NS = {}


def start_evaluator(zygote, learner_uid):
    """Has the zygote fork the evaluator (before the kernel exists). Returns (pid, the harness's
    end of the harness-evaluator socket, the path of the socket the agent connects to)."""
    import socket

    ours, theirs = socket.socketpair()
    directory = os.path.join(SCRATCH, "gofer-evaluator-" + secrets.token_hex(6))
    path = os.path.join(directory, "agent.sock")
    try:
        pid = zygote.ask({"op": "evaluator", "directory": directory, "path": path, "uid": learner_uid},
                         fds=[theirs.fileno()])["pid"]
    finally:
        theirs.close()
    return pid, ours, path


def drop_to_evaluator_uid():
    os.setgroups([])
    os.setresgid(EVALUATOR_UID, EVALUATOR_UID, EVALUATOR_UID)
    os.setresuid(EVALUATOR_UID, EVALUATOR_UID, EVALUATOR_UID)
    if os.getresuid() != (EVALUATOR_UID,) * 3 or os.getresgid() != (EVALUATOR_UID,) * 3:
        raise JobError("internal", "the evaluator could not drop its privileges")
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0: no ptrace, /proc files stay root's
        raise JobError("internal", "the evaluator could not make itself undumpable")


def evaluator_process(link, directory, path, learner_uid):
    import socket
    import struct

    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    keep = {0, 1, 2, link.fileno()}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    drop_to_evaluator_uid()
    os.mkdir(directory, 0o711)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(1)
    os.chdir(WORK)
    sys.path[:] = [p for p in sys.path if os.path.isabs(p) and not p.startswith(SCRATCH + os.sep)]
    exec(CODEC, CODEC_NS)
    stream = link.makefile("rwb", buffering=0)

    def tell(message):
        stream.write(json.dumps(message).encode("utf-8", "surrogatepass") + b"\n")

    tell({"ready": True})
    channel = None
    for line in stream:
        message = json.loads(line)
        op = message.get("op")
        if op == "connect":
            listener.settimeout(message["timeout"])
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError) as err:
                tell({"error": "the kernel did not connect (%s)" % type(err).__name__})
                continue
            listener.close()
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            if uid != learner_uid:
                conn.close()
                tell({"error": "a process of uid %d connected instead of the kernel" % uid})
                continue
            channel = Channel(conn, tell)
            tell({"connected": True})
        elif op == "case":
            try:
                tell({"results": evaluate_case(channel, message)})
            except CaseTimeLimit:  # the alarm fired as the case ended, outside its examples
                tell({"results": [{"out": "", "cut": False, "exc": None, "timeout": True}] * len(message["examples"])})
            except KernelStuck:
                tell({"stuck": True})
                return
            except ChannelClosed:
                tell({"closed": True})
                return
        elif op == "bye":
            if channel is not None:
                try:
                    data = b'{"op":"bye"}'
                    channel.conn.sendall(len(data).to_bytes(4, "big") + data)
                except OSError:
                    pass
            return


# ---------------------------------------------------------------------------------------------
# 6. Driving the kernel
# ---------------------------------------------------------------------------------------------

class Timing:
    kernel_start = 0.0
    notebook = 0.0
    tests = 0.0


class KernelProvoked(Exception):
    """The kernel broke the protocol (a bad signature, an unreadable message): the learner's
    outcome, never an infrastructure failure. The detail is learner-controlled text: logs only."""


class Grader:
    """Drives the learner's kernel over its shell channel only. Nothing subscribes to IOPub, so
    whatever the notebook prints or displays is dropped by the kernel's own PUB socket at once
    (and the kernel's stdout and stderr are /dev/null to begin with: see STREAM_SHIM)."""

    def __init__(self, zygote, uid):
        self.zygote = zygote
        self.uid = uid
        self.budget = None  # the job's time limit, once the job is known
        self.kernel_pid = None
        self.kc = None
        self.oom_before = None
        self.cell_errors = []
        self.error_count = 0

    # -- kernel -------------------------------------------------------------------------------

    async def start_kernel(self):
        import zmq
        from jupyter_client.asynchronous import AsyncKernelClient

        shim, connection_file = prepare_kernel_files()
        self.oom_before = read_oom_kills()
        self.kernel_started_at = time.monotonic()
        self.kernel_pid = self.zygote.ask({"op": "kernel", "connection": connection_file, "uid": self.uid,
                                           "work": WORK, "shim": shim, "home": HOME, "fonts": font_cache()})["pid"]
        kc = AsyncKernelClient()
        kc.load_connection_file(connection_file)
        kc.allow_stdin = False
        # The client connects before the kernel listens: retry every 10 ms, not zmq's 100 ms.
        # A reply larger than MAX_MESSAGE_BYTES is refused instead of loaded into memory.
        kc.context.setsockopt(zmq.RECONNECT_IVL, 10)
        kc.context.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=True)
        self.kc = kc

    def is_alive(self):
        return self.kernel_pid is not None and not self.zygote.ask({"op": "status", "pid": self.kernel_pid})["exited"]

    async def reply_to(self, msg_id, deadline):
        """The shell reply to `msg_id`, or 'timeout' (deadline passed) or 'died'."""
        from queue import Empty

        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            try:
                msg = await self.kc.get_shell_msg(timeout=min(left, 0.25))
            except Empty:
                if not self.is_alive():
                    return "died"
                continue
            except (ValueError, KeyError, TypeError) as err:  # jupyter_client: bad signature, bad frames
                raise KernelProvoked("%s: %s" % (type(err).__name__, err))
            if (msg.get("parent_header") or {}).get("msg_id") == msg_id:
                return msg

    async def ready(self):
        """Ready once a kernel_info request is answered on shell (asked again every second:
        one sent before the kernel listened may be lost)."""
        deadline = self.kernel_started_at + KERNEL_START_TIMEOUT
        while True:
            reply = await self.reply_to(self.kc.kernel_info(), min(deadline, time.monotonic() + 1.0))
            if isinstance(reply, dict):
                break
            if reply == "died":
                raise JobError("internal", "the kernel exited while starting (exit status %s)" % self.kernel_exit())
            if time.monotonic() >= deadline:
                raise JobError("internal", "the kernel did not start within %d s" % KERNEL_START_TIMEOUT)
        Timing.kernel_start = time.monotonic() - self.kernel_started_at

    def stop(self):
        """Every learner process goes, the kernel included (the harness cannot signal it)."""
        if self.kernel_pid is not None:
            kill_learner_processes(self.uid)
            self.kernel_exit()

    def kernel_exit(self):
        """The kernel's exit status (negative: the signal that ended it), or None if it runs."""
        if self.kernel_pid is None:
            return None
        for _ in range(20):
            status = self.zygote.ask({"op": "status", "pid": self.kernel_pid})
            if status["exited"]:
                return status["code"]
            time.sleep(0.01)
        return None

    def died(self, where):
        """The Outcome for a kernel that died `where` (a phrase)."""
        code = self.kernel_exit()
        after = read_oom_kills()
        oom = (code == -signal.SIGKILL and after is not None and self.oom_before is not None
               and after > self.oom_before)
        log("kernel died, exit status", code, "oom_kill", self.oom_before, "->", after)
        if oom:
            limit = memory_limit_text()
            return Outcome("out_of_memory",
                           "Your notebook ran out of memory %s and was stopped%s. Use less memory (for "
                           "example smaller data or fewer copies of it), then submit again."
                           % (where, " (the limit is %s)" % limit if limit else ""))
        return Outcome("kernel_died",
                       "The Python kernel stopped unexpectedly %s, so the notebook could not be graded."
                       % where)

    async def interrupt(self):
        """An interrupt_request on the control channel: the kernel signals itself (the harness
        cannot signal the learner's uid)."""
        try:
            self.kc.control_channel.send(self.kc.session.msg("interrupt_request", content={}))
        except Exception as err:
            log("could not interrupt the kernel:", err)

    async def execute(self, code, deadline, store_history, user_expressions=None):
        """Runs code in the kernel until `deadline`. Returns the execute_reply's content, or
        'timeout' (the kernel was interrupted) or 'died'."""
        if deadline - time.monotonic() <= 0:
            return "timeout"
        msg_id = self.kc.execute(code, silent=False, store_history=store_history,
                                 user_expressions=user_expressions or {}, allow_stdin=False,
                                 stop_on_error=False)
        reply = await self.reply_to(msg_id, deadline)
        if reply == "timeout":
            await self.interrupt()
            # Let an interruptible cell end, so the kernel is quiet before the next request.
            after = await self.reply_to(msg_id, time.monotonic() + INTERRUPT_GRACE)
            return "died" if after == "died" else "timeout"
        if reply == "died":
            return reply
        return reply.get("content") or {}

    # -- the notebook -------------------------------------------------------------------------

    async def run_notebook(self, code_cells):
        started = time.monotonic()
        deadline = started + self.budget
        try:
            for index, number, cell in code_cells:
                if not cell.source.strip():
                    continue
                outcome = await self.execute(cell.source, deadline, store_history=True)
                if outcome == "timeout":
                    raise Outcome("timeout", "%s was still running after the %s time limit and was stopped. "
                                             "Make sure every cell finishes (look for a loop that never "
                                             "ends), then submit again."
                                  % (capitalize(cell_label(number, cell.source)), seconds_text(self.budget)))
                if outcome == "died":
                    raise self.died("while running %s" % cell_label(number, cell.source))
                if outcome.get("status") == "error":
                    self.note_cell_error(index, outcome)
        finally:
            Timing.notebook = time.monotonic() - started

    def note_cell_error(self, index, content):
        self.error_count += 1
        if len(self.cell_errors) < 3:
            self.cell_errors.append((index, shorten(str(content.get("ename") or "Error"), 100),
                                     shorten(str(content.get("evalue") or ""), 200)))

    def errors_message(self, code_cells):
        if not self.cell_errors:
            return None
        numbers = dict((index, (number, cell.source)) for index, number, cell in code_cells)
        index, ename, evalue = self.cell_errors[0]
        number, source = numbers.get(index, (index + 1, ""))
        error = ename + (": " + evalue if evalue else "")
        if self.error_count == 1:
            text = "Code cell %d raised %s" % (number, error)
            text += "" if text.endswith((".", "!", "?")) else "."
        else:
            text = "%d code cells raised errors; the first was code cell %d (%s)." % (self.error_count, number, error)
        return shorten(text + " The cells after it still ran; tests that depend on it may fail.", 600)

    # -- the tests ----------------------------------------------------------------------------

    async def run_tests(self, tests, policy, evaluator):
        """Runs every case in the trusted evaluator, reading the notebook through the agent."""
        started = time.monotonic()
        deadline = started + self.budget
        case_limit = max(MIN_CASE_SECONDS, self.budget / 4)
        link = EvaluatorLink(evaluator, self)
        agent = None
        try:
            await link.ready(deadline)
            log("evaluator ready %.3f s into the tests" % (time.monotonic() - started))
            suffix = secrets.token_hex(6)
            b_name, ns_name = "_gofer_b_" + suffix, "_gofer_ns_" + suffix
            boot = (
                "import builtins as {b}\n"
                "{ns} = {{'__builtins__': {b}, '__name__': '_gofer_agent'}}\n"
                "{b}.exec({src!r}, {ns})\n"
                "{ns}['serve']({b}.globals(), {path!r}, ({b!r}, {ns!r}), {limit})\n"
            ).format(b=b_name, ns=ns_name, src=CODEC + AGENT, path=link.path, limit=EXAMPLE_OUTPUT_LIMIT)
            agent = self.kc.execute(boot, silent=False, store_history=False, allow_stdin=False, stop_on_error=False)
            connecting = asyncio.ensure_future(link.ask(
                {"op": "connect", "timeout": min(KERNEL_ANSWER_SECONDS, max(1, deadline - time.monotonic()))},
                deadline + INTERRUPT_GRACE))
            # The agent's reply comes only when it stops serving: one before the connection means
            # the notebook broke it (for example by replacing `exec`), and waiting longer is useless.
            ended = asyncio.ensure_future(self.reply_to(agent, deadline))
            await asyncio.wait({connecting, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                ended.cancel()
                log("the agent ended before it connected")
                raise await self.unanswered(None)
            ended.cancel()
            answer = connecting.result()
            log("agent connected %.3f s into the tests" % (time.monotonic() - started))
            if not (answer or {}).get("connected"):
                log("the agent did not connect:", shorten((answer or {}).get("error"), 300))
                raise await self.unanswered(None)
            order = [(f, c) for f in tests for c in f.cases if not c.hidden]
            order += [(f, c) for f in tests for c in f.cases if c.hidden]
            for test, case in order:
                if policy == "gofer" and test.failed:
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.tests_timeout(test)
                await self.run_case(link, test, case, min(case_limit, left), deadline)
                if not case.passed:
                    test.failed = True
        finally:
            await link.close()
            if agent is not None and self.is_alive():
                await self.reply_to(agent, time.monotonic() + 1.0)
            Timing.tests = time.monotonic() - started

    def tests_timeout(self, test):
        which = " (test %s was running)" % test.name if test is not None else ""
        return Outcome("timeout", "The tests took longer than the %s time limit%s and were stopped, so the "
                                  "notebook could not be graded. Check that your answers do not run slowly "
                                  "or loop forever when the tests use them." % (seconds_text(self.budget), which))

    async def unanswered(self, test):
        """The Outcome when the kernel's end of the tests' channel went away or broke."""
        which = " (test %s was running)" % test.name if test is not None else ""
        if not self.is_alive():
            return self.died("while the tests were running%s" % which)
        return Outcome("kernel_died", "The notebook's kernel stopped answering the tests%s, so the notebook "
                                      "could not be graded." % which)

    async def run_case(self, link, test, case, limit, deadline):
        import doctest

        runnable = [e for e in case.examples if not e.options.get(doctest.SKIP)]
        if not runnable:
            case.passed = True
            return
        answer = await link.ask({"op": "case", "limit": limit, "examples": [e.source for e in runnable],
                                 "setup": test.setup, "teardown": test.teardown},
                                time.monotonic() + limit + 2 * INTERRUPT_GRACE + 5)
        if answer is None or answer.get("stuck"):
            raise self.tests_timeout(test)
        if answer.get("closed"):
            raise await self.unanswered(test)
        results = parse_results(answer.get("results"), len(runnable))
        case.passed = True
        for position, example in enumerate(runnable):
            verdict = judge(example, results[position] if results else None, limit)
            if verdict is not None:
                case.passed = False
                if not case.hidden:
                    case.failure = verdict
                break


class EvaluatorLink:
    """The harness's end of its socket to the evaluator: one JSON line per message each way."""

    def __init__(self, evaluator, grader):
        self.pid, self.sock, self.path = evaluator
        self.grader = grader
        self.reader = self.writer = None

    async def ready(self, deadline):
        self.reader, self.writer = await asyncio.open_connection(sock=self.sock, limit=MAX_FRAME)
        answer = await self.read(deadline)
        if not (answer or {}).get("ready"):
            raise JobError("internal", "the evaluator did not start")

    async def read(self, deadline):
        try:
            line = await asyncio.wait_for(self.reader.readline(), max(0.001, deadline - time.monotonic()))
        except (asyncio.TimeoutError, ValueError, OSError):
            return None
        if not line:
            raise JobError("internal", "the evaluator exited")
        return json.loads(line)

    async def ask(self, message, deadline):
        """Sends a request; interrupts the kernel whenever the evaluator asks; returns its answer
        (None when it gave none by `deadline`)."""
        self.writer.write(json.dumps(message).encode("utf-8", "surrogatepass") + b"\n")
        await self.writer.drain()
        while True:
            answer = await self.read(deadline)
            if answer is not None and answer.get("interrupt"):
                await self.grader.interrupt()
                continue
            return answer

    async def close(self):
        if self.writer is not None:
            try:
                self.writer.write(b'{"op": "bye"}\n')
                await self.writer.drain()
                await asyncio.wait_for(self.reader.read(), 2)
            except Exception:
                pass
            self.writer.close()
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except OSError:
            pass


def capitalize(text):
    return text[:1].upper() + text[1:]


def parse_results(results, count):
    """The evaluator's results for a case's examples, or None when they are not well formed."""
    if not isinstance(results, list) or len(results) != count:
        return None
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("out"), str):
            return None
        exc = item.get("exc")
        if exc is not None and not (isinstance(exc, list) and exc and all(isinstance(x, str) for x in exc)):
            return None
    return results


def strip_exception_detail(msg):
    """The exception's type name without module path and detail, for IGNORE_EXCEPTION_DETAIL."""
    start, end = 0, len(msg)
    i = msg.find("\n")
    if i >= 0:
        end = i
    i = msg.find(":", 0, end)
    if i >= 0:
        end = i
    i = msg.rfind(".", 0, end)
    if i >= 0:
        start = i + 1
    return msg[start:end]


def judge(example, result, limit):
    """None when the example passed, else a doctest-style description of the failure."""
    import doctest

    flags = 0
    for flag, on in example.options.items():
        flags = flags | flag if on else flags & ~flag
    checker = doctest.OutputChecker()
    if result is None:
        return "Failed example:\n%s\nThe test could not run (the kernel gave no usable answer)." % indent(example.source)
    if result.get("timeout"):
        return "Failed example:\n%s\nIt was still running after %s (a test case's time limit) and was stopped." \
            % (indent(example.source), seconds_text(limit))
    out = result["out"]
    if out and not out.endswith("\n"):
        out += "\n"
    if result.get("cut"):
        out += "[... output cut: it was too long]\n"
    exc = result.get("exc")
    if exc is None:
        if not result.get("cut") and checker.check_output(example.want, out, flags):
            return None
        return describe(example, example.want, out)
    got = exc[-1] if exc[-1].endswith("\n") else exc[-1] + "\n"
    if example.exc_msg is None:
        return "Failed example:\n%s\nException raised:\n%s" % (indent(example.source), indent(got))
    if checker.check_output(example.exc_msg, got, flags):
        return None
    if flags & doctest.IGNORE_EXCEPTION_DETAIL and checker.check_output(
            strip_exception_detail(example.exc_msg), strip_exception_detail(got), flags):
        return None
    return describe(example, example.exc_msg, got)


def indent(text, limit=500):
    text = shorten(text.rstrip("\n"), limit)
    return "\n".join("    " + line for line in text.split("\n"))


def describe(example, want, got):
    parts = ["Failed example:", indent(example.source)]
    if want:
        parts += ["Expected:", indent(want)]
    else:
        parts.append("Expected nothing")
    if got:
        parts += ["Got:", indent(got)]
    else:
        parts.append("Got nothing")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# 7. Scoring
# ---------------------------------------------------------------------------------------------

def score(tests, policy):
    results = []
    for test in tests:
        passed = all(case.passed for case in test.cases)
        if policy == "gofer":
            points, max_points = (1 if passed else 0), 1
        else:
            max_points = sum(case.points for case in test.cases)
            if passed:
                points = max_points
            elif test.all_or_nothing:
                points = 0
            else:
                points = sum(case.points for case in test.cases if case.passed)
            points, max_points = round(points, 9), round(max_points, 9)
        entry = {"name": test.name, "points": points, "maxPoints": max_points, "passed": passed,
                 "hidden": all(case.hidden for case in test.cases)}
        if not passed:
            visible = next((c for c in test.cases if not c.hidden and c.passed is False), None)
            if visible is not None:
                text = visible.failure or "A test case failed."
                if visible.failure_message:
                    text += "\n\n" + visible.failure_message
                if len(test.cases) > 1:
                    text = "%s:\n%s" % (visible.name, text)
                entry["message"] = shorten(text, TEST_MESSAGE_LIMIT)
            else:
                entry["message"] = "A hidden test case failed."
        results.append(entry)
    return results


# ---------------------------------------------------------------------------------------------
# The job, start to end
# ---------------------------------------------------------------------------------------------

async def grade(job, text, tests, evaluator, zygote):
    """A job given at start: the kernel starts while nbformat reads the notebook."""
    grader = Grader(zygote, job["uid"])
    try:
        await grader.start_kernel()
        _, code_cells = load_notebook(text)
        del text
        await grader.ready()
        log("kernel ready in %.3f s" % Timing.kernel_start)
        return await grade_notebook(grader, job, code_cells, tests, evaluator)
    finally:
        grader.stop()


async def grade_prestarted(zygote, modules):
    """A pre-started container: the zygote's libraries, the evaluator and the kernel are up
    before the job arrives. It says GOFER-READY on stdout, then waits for the job on stdin."""
    make_job_dirs()
    zygote.ask({"op": "warm", "modules": modules})
    warm_harness()
    evaluator = start_evaluator(zygote, LEARNER_UID)
    grader = Grader(zygote, LEARNER_UID)
    try:
        await grader.start_kernel()
        await grader.ready()
        log("kernel ready in %.3f s; waiting for the job" % Timing.kernel_start)
        write_all(_RESULT_FD, b"GOFER-READY\n")
        extract_job(sys.stdin.buffer)
        job = read_job()
        if job["uid"] != LEARNER_UID:
            raise JobError("internal", "a pre-started container runs the kernel as uid %d, not %d" % (LEARNER_UID, job["uid"]))
        text = parse_notebook_json()
        tests = load_tests(job["policy"])
        _, code_cells = load_notebook(text)
        del text
        return await grade_notebook(grader, job, code_cells, tests, evaluator)
    finally:
        grader.stop()


async def grade_notebook(grader, job, code_cells, tests, evaluator):
    """Runs the cells and the tests on a ready kernel, and scores them."""
    grader.budget = job["timeout"]
    try:
        await grader.run_notebook(code_cells)
        log("notebook ran in %.3f s" % Timing.notebook)
        await grader.run_tests(tests, job["policy"], evaluator)
        log("tests ran in %.3f s" % Timing.tests)
        return {"status": "graded", "message": grader.errors_message(code_cells),
                "tests": score(tests, job["policy"]), "error": None}
    except KernelProvoked as err:
        log("the kernel broke the protocol (learner-controlled text follows):", shorten(err, 300))
        raise Outcome("kernel_died", "The notebook's kernel sent messages Gofer could not verify, so the "
                                     "notebook could not be graded.")


def warm_harness():
    """What this process does once a job arrives, done before (nothing of a job exists yet): the
    archive, doctest and nbformat imports, and nbformat's first validation, which loads its schema."""
    import doctest  # noqa: F401
    import tarfile  # noqa: F401
    import textwrap  # noqa: F401

    load_notebook('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}')


def warm_modules(tests, notebook_text):
    """The libraries the zygote imports before it forks the evaluator and the kernel, when the
    tests or the notebook mention them (a DataFrame the notebook makes crosses as a DataFrame, so
    the evaluator needs pandas)."""
    text = "\n".join(s for t in tests for s in t.setup + t.teardown + [e.source for c in t.cases for e in c.examples])
    text += "\n" + notebook_text
    return [m for m in ("numpy", "pandas") if re.search(r"\b(%s|%s)\b" % (m, {"numpy": "np", "pandas": "pd"}[m]), text)]


def main():
    # With `error` set the status is never "graded", so a runner that overlooked `error` still
    # could not turn the result into a score.
    result = {"status": "kernel_died", "message": None, "tests": [], "error": None}
    try:
        # Before anything of the job is read, so the zygote holds nothing of it.
        zygote = Zygote.start()
        prestart = os.environ.get("GOFER_PRESTART")
        if prestart is not None:
            modules = [m for m in prestart.split(",") if re.fullmatch(r"[A-Za-z_][\w.]*", m)]
            result = asyncio.run(grade_prestarted(zygote, modules))
        else:
            extract_job(sys.stdin.buffer)
            job = read_job()
            text = parse_notebook_json()
            tests = load_tests(job["policy"])
            zygote.ask({"op": "warm", "modules": warm_modules(tests, text)})
            # The evaluator exists before the kernel (and so before any learner code).
            evaluator = start_evaluator(zygote, job["uid"])
            result = asyncio.run(grade(job, text, tests, evaluator, zygote))
    except Outcome as outcome:
        result = {"status": outcome.status, "message": shorten(outcome.message, RESULT_MESSAGE_LIMIT),
                  "tests": [], "error": None}
    except JobError as err:
        log("job error:", err.kind, err.message)
        result = {"status": "kernel_died",
                  "message": GRADER_FAULT,
                  "tests": [], "error": {"kind": err.kind, "message": shorten(err.message, RESULT_MESSAGE_LIMIT)}}
    except BaseException as err:  # a harness bug: report it rather than die silently
        # Its text may come from the kernel's messages: the log has it, the result does not.
        traceback.print_exc()
        result = {"status": "kernel_died",
                  "message": GRADER_FAULT,
                  "tests": [], "error": {"kind": "internal",
                                         "message": "the harness failed with %s (the container's log has the detail)" % type(err).__name__}}
    try:
        import resource
        usage = resource.getrusage(resource.RUSAGE_SELF)
        log("status %s, harness CPU %.2f s, max RSS %d MB"
            % (result.get("status"), usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024))
    except Exception:
        pass
    result["timing"] = {"kernelStartMs": ms(Timing.kernel_start), "notebookMs": ms(Timing.notebook),
                        "testsMs": ms(Timing.tests)}
    emit(result)


def emit(result):
    nonce = read_nonce() or "-"
    try:
        body = json.dumps(result, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        body = json.dumps({"status": "kernel_died", "message": None, "tests": [], "error": {
            "kind": "internal", "message": "the result could not be encoded: %s" % err}})
    line = "GOFER-RESULT %s %s\n" % (nonce, body)
    try:
        write_all(_RESULT_FD, line.encode("ascii"))
    finally:
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    if os.environ.get("GOFER_ZYGOTE_FD"):
        zygote_main()
    main()
