"""Gofer's grading harness: runs one learner notebook in a grading container and grades it.

Started by the container runner as ``python3 -c BOOT`` (see docs/harness-protocol.md): BOOT reads
this source from stdin and executes it as ``__main__``; the rest of stdin is an uncompressed tar
stream holding job.json, submission.ipynb, tests/*.py and files/**.

What it does, in order:
  1. extracts the job (job, notebook and tests into a root-only directory, support files into the
     learner's working directory), refusing links, devices, absolute paths and ``..``;
  2. starts an IPython kernel that drops to the learner's uid before any learner code exists in
     it, with its stdio on /dev/null and its sys.stdout and sys.stderr writing to /dev/null too,
     so nothing the notebook prints is held anywhere; the harness talks to it on the shell
     channel only and never subscribes to IOPub (the kernel's PUB socket drops what it publishes);
  3. checks the notebook and loads the instructor's OK-format tests while the kernel boots;
  4. runs every code cell once (errors do not stop later cells) within the job's time budget;
  5. runs each test case in the kernel against a shallow copy of the final global namespace and
     compares the captured output here, in the harness, with doctest's OutputChecker, so nothing
     the learner's code patches inside its kernel can change how outputs are compared. The kernel
     only ever sees the test *sources*, never the expected outputs. All visible cases run before
     any hidden case;
  6. scores the tests with the job's policy (gofer or otter) and prints exactly one line,
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
import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
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
MAX_ARCHIVE_MEMBERS = 20000
KERNEL_START_TIMEOUT = 60.0
INTERRUPT_GRACE = 5.0  # how long an interrupted kernel has to answer before it counts as stuck
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

    make_dir(ROOT, 0o700)
    os.makedirs(WORK, mode=0o755, exist_ok=True)
    os.chmod(WORK, 0o777)
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
    def __init__(self, name, cases, all_or_nothing):
        self.name = name
        self.cases = cases
        self.all_or_nothing = all_or_nothing
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
        for key in ("setup", "teardown"):
            value = suite.get(key) or ""
            if not isinstance(value, str) or value.strip():
                raise bad("its suite has a %s; setup and teardown code is not supported" % key)
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
        files.append(TestFile(name, cases, bool(all_or_nothing)))
    return files


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
# 4. The kernel, run as the learner's uid
# ---------------------------------------------------------------------------------------------

# Runs as root with the connection file's path; drops to the learner's uid, then becomes the
# kernel. Kept free of `{name}` patterns (jupyter_client substitutes those in argv).
WRAPPER = r'''
import os, stat, sys

def main():
    connection, uid, work, shim, home, fonts = sys.argv[1:7]
    uid = int(uid)
    with open(connection, "rb") as f:
        info = f.read()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
        sys.stderr.write("gofer kernel wrapper: could not drop privileges\n")
        os._exit(71)
    try:
        os.setuid(0)
    except OSError:
        pass
    else:
        sys.stderr.write("gofer kernel wrapper: setuid(0) still works\n")
        os._exit(72)
    os.umask(0o022)
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
    if fonts and os.path.isdir(fonts):
        for name in os.listdir(fonts):
            source = os.path.join(fonts, name)
            try:
                if os.path.isfile(source):
                    with open(source, "rb") as src, open(os.path.join(mpl, name), "wb") as dst:
                        dst.write(src.read())
            except OSError:
                pass
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("GOFER_") and not k.startswith("JUPYTER_"))
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
    os.chdir(work)
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.closerange(3, 65536)
    os.execve(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", kernel_file,
                               "--HistoryManager.hist_file=:memory:",
                               "--IPKernelApp.outstream_class=_gofer_stream.stream"], env)

main()
'''

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


def prepare_kernel_files(uid):
    """Writes the kernelspec (root only) and the learner-readable shim modules. Returns
    (kernelspec directory, connection file path)."""
    kernel_dir = os.path.join(ROOT, "kernel")
    make_dir(kernel_dir, 0o700)
    specs = os.path.join(kernel_dir, "specs")
    make_dir(specs, 0o700)
    spec = os.path.join(specs, "gofer")
    make_dir(spec, 0o700)
    wrapper = os.path.join(kernel_dir, "wrapper.py")
    write_file(wrapper, WRAPPER.encode(), 0o600)

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

    fonts = os.environ.get("MPLCONFIGDIR") or FONT_CACHE
    if not os.path.isdir(fonts):
        fonts = FONT_CACHE if os.path.isdir(FONT_CACHE) else ""
    argv = [sys.executable, "-I", wrapper, "{connection_file}", str(uid), WORK, shim,
            HOME, fonts]
    kernel_json = {"argv": argv, "display_name": "Gofer", "language": "python",
                   "interrupt_mode": "message", "env": {}, "metadata": {}}
    write_file(os.path.join(spec, "kernel.json"), json.dumps(kernel_json).encode(), 0o600)
    return specs, os.path.join(kernel_dir, "connection.json")


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


# ---------------------------------------------------------------------------------------------
# 5 and 6. Running the notebook and the tests
# ---------------------------------------------------------------------------------------------

# Defines the test runner in the kernel after the notebook ran. It is compiled in a namespace of
# its own (so names the notebook defined, such as `json` or `len`, cannot shadow what it uses),
# snapshots the notebook's globals, and returns `run(sources)`: runs the sources (the examples of
# one test case) one after the other in a fresh shallow copy of that snapshot, capturing what
# each prints or shows (repr, as plain doctest does) and the exception it raises, and returns
# the results as JSON (read back as a user expression of the execute request).
KERNEL_RUNNER = r'''
def setup(user_ns, own_names, example_limit, case_limit):
    import io, json, sys, traceback
    base = dict((k, v) for k, v in user_ns.items() if k not in own_names)

    def run(sources):
        namespace = dict(base)
        results = []
        budget = case_limit
        for source in sources:
            buffer = io.StringIO()
            saved = sys.stdout, sys.displayhook
            exc = None
            sys.stdout = buffer
            sys.displayhook = sys.__displayhook__
            try:
                exec(compile(source, "<test>", "single", 0, True), namespace)
            except BaseException as err:
                try:
                    exc = [str(line)[:example_limit] for line in traceback.format_exception_only(type(err), err)]
                except BaseException:
                    exc = [type(err).__name__ + "\n"]
            finally:
                sys.stdout, sys.displayhook = saved
            try:
                text = buffer.getvalue()
            except BaseException:
                text = ""
            keep = max(0, min(example_limit, budget))
            budget -= min(len(text), keep)
            results.append({"out": text[:keep], "cut": len(text) > keep, "exc": exc})
        return json.dumps(results)

    return run
'''


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

    def __init__(self, job):
        self.job = job
        self.uid = job["uid"]
        self.budget = job["timeout"]
        self.km = None
        self.kc = None
        self.oom_before = None
        self.cell_errors = []
        self.error_count = 0

    # -- kernel -------------------------------------------------------------------------------

    async def start_kernel(self):
        import zmq
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        specs, connection_file = prepare_kernel_files(self.uid)
        self.oom_before = read_oom_kills()
        self.km = AsyncKernelManager(kernel_name="gofer", connection_file=connection_file,
                                     kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]))
        self.kernel_started_at = time.monotonic()
        await self.km.start_kernel(cwd=WORK)
        kc = self.km.client()
        kc.allow_stdin = False
        # The client connects before the kernel listens: retry every 10 ms, not zmq's 100 ms.
        # A reply larger than MAX_MESSAGE_BYTES is refused instead of loaded into memory.
        kc.context.setsockopt(zmq.RECONNECT_IVL, 10)
        kc.context.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self.kc = kc

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
                if not await self.km.is_alive():
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

    def kernel_exit(self):
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        if process is None:
            return None
        for _ in range(20):
            code = process.poll()
            if code is not None:
                return code
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
        try:
            await asyncio.wait_for(self.km.interrupt_kernel(), 2)
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

    async def run_tests(self, tests, policy):
        started = time.monotonic()
        deadline = started + self.budget
        suffix = secrets.token_hex(6)
        run_name = "_gofer_run_" + suffix
        b_name = "_gofer_b_" + suffix
        ns_name = "_gofer_ns_" + suffix
        definition = (
            "import builtins as {b}\n"
            "{ns} = {{'__builtins__': {b}, '__name__': '__gofer__'}}\n"
            "{b}.exec({src!r}, {ns})\n"
            "{run} = {ns}['setup']({b}.globals(), ({b!r}, {ns!r}, {run!r}), {el}, {cl})\n"
            "del {b}, {ns}\n"
        ).format(b=b_name, ns=ns_name, run=run_name, src=KERNEL_RUNNER, el=EXAMPLE_OUTPUT_LIMIT,
                 cl=CASE_OUTPUT_LIMIT)
        try:
            outcome = await self.execute(definition, deadline, store_history=False)
            if isinstance(outcome, str):
                raise self.test_problem(outcome, None)
            order = [(f, c) for f in tests for c in f.cases if not c.hidden]
            order += [(f, c) for f in tests for c in f.cases if c.hidden]
            for test, case in order:
                if policy == "gofer" and test.failed:
                    continue
                problem = await self.run_case(case, deadline, run_name)
                if problem:
                    raise self.test_problem(problem, test)
                if not case.passed:
                    test.failed = True
        finally:
            Timing.tests = time.monotonic() - started

    def test_problem(self, problem, test):
        which = " (test %s was running)" % test.name if test is not None else ""
        if problem == "timeout":
            return Outcome("timeout", "The tests took longer than the %s time limit%s and were stopped, so the "
                                      "notebook could not be graded. Check that your answers do not run slowly "
                                      "or loop forever when the tests use them." % (seconds_text(self.budget), which))
        return self.died("while the tests were running%s" % which)

    async def run_case(self, case, deadline, run_name):
        import ast
        import doctest

        runnable = [e for e in case.examples if not e.options.get(doctest.SKIP)]
        if not runnable:
            case.passed = True
            return None
        expression = "%s(%r)" % (run_name, [e.source for e in runnable])
        outcome = await self.execute("", deadline, store_history=False, user_expressions={"r": expression})
        if isinstance(outcome, str):
            return outcome
        results = None
        answer = (outcome.get("user_expressions") or {}).get("r") or {}
        text = (answer.get("data") or {}).get("text/plain") if answer.get("status") == "ok" else None
        if isinstance(text, str):
            try:
                results = parse_results(ast.literal_eval(text), len(runnable))
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                results = None
        case.passed = True
        for position, example in enumerate(runnable):
            verdict = judge(example, results[position] if results else None)
            if verdict is not None:
                case.passed = False
                if not case.hidden:
                    case.failure = verdict
                break
        return None


def capitalize(text):
    return text[:1].upper() + text[1:]


def parse_results(payload, count):
    if not isinstance(payload, str):
        return None
    try:
        results = json.loads(payload)
    except (ValueError, RecursionError):
        return None
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


def judge(example, result):
    """None when the example passed, else a doctest-style description of the failure."""
    import doctest

    flags = 0
    for flag, on in example.options.items():
        flags = flags | flag if on else flags & ~flag
    checker = doctest.OutputChecker()
    if result is None:
        return "Failed example:\n%s\nThe test could not run (the kernel gave no usable answer)." % indent(example.source)
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

async def grade(job):
    grader = Grader(job)
    try:
        text = parse_notebook_json()
        # Boot the kernel now; check the notebook and load the tests while it starts.
        await grader.start_kernel()
        _, code_cells = load_notebook(text)
        del text
        tests = load_tests(job["policy"])
        await grader.ready()
        log("kernel ready in %.3f s" % Timing.kernel_start)
        await grader.run_notebook(code_cells)
        log("notebook ran in %.3f s" % Timing.notebook)
        await grader.run_tests(tests, job["policy"])
        log("tests ran in %.3f s" % Timing.tests)
        return {"status": "graded", "message": grader.errors_message(code_cells),
                "tests": score(tests, job["policy"]), "error": None}
    finally:
        if grader.km is not None and grader.km.has_kernel:
            # Every learner process goes, the kernel included (the harness cannot signal it).
            kill_learner_processes(job["uid"])
            grader.kernel_exit()


def main():
    # With `error` set the status is never "graded", so a runner that overlooked `error` still
    # could not turn the result into a score.
    result = {"status": "kernel_died", "message": None, "tests": [], "error": None}
    try:
        extract_job(sys.stdin.buffer)
        job = read_job()
        result = asyncio.run(grade(job))
    except Outcome as outcome:
        result = {"status": outcome.status, "message": shorten(outcome.message, RESULT_MESSAGE_LIMIT),
                  "tests": [], "error": None}
    except JobError as err:
        log("job error:", err.kind, err.message)
        result = {"status": "kernel_died",
                  "message": GRADER_FAULT,
                  "tests": [], "error": {"kind": err.kind, "message": shorten(err.message, RESULT_MESSAGE_LIMIT)}}
    except BaseException as err:  # a harness bug: report it rather than die silently
        traceback.print_exc()
        result = {"status": "kernel_died",
                  "message": GRADER_FAULT,
                  "tests": [], "error": {"kind": "internal",
                                         "message": shorten("%s: %s" % (type(err).__name__, err), RESULT_MESSAGE_LIMIT)}}
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
    main()
