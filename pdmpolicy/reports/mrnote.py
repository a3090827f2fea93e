"""`pdmpolicy note`: create or update the one pdmpolicy note on a GitLab merge request.

The note is the Markdown that `pdmpolicy check --report markdown=FILE` writes; its first line
is `MARKER`, which is how the note is found again. Each run lists every note of the merge
request (all pages, oldest first), takes the first note that carries the marker *and was
written by the token's own user*, and replaces its body, or creates the note when there is
none. An identical body is left alone (no write). Notes of other users are never touched,
even when they quote the marker.

It goes through GitLab's Notes API with python-gitlab (the optional extra `pdmpolicy[mr]`),
imported only when the command runs so the rest of pdmpolicy does not need it.

Exit codes:
  0  the note was created, updated, or already up to date;
  1  GitLab could not be used: the token was refused (401/403), the project or merge
     request was not found (404), a timeout, no connection, a malformed answer, any other
     HTTP error: things to fix on the server or the token's side, or to retry;
  2  usage or configuration: no token, no URL / project / merge request, an unreadable
     note file, a file that is not a pdmpolicy note, python-gitlab not installed.
Every failure is one line on standard error naming what to check; never a traceback, and
the token is never printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pdmpolicy.reports.markdown import MARKER

if TYPE_CHECKING:
    import gitlab
    from gitlab.v4.objects import ProjectMergeRequest

EXIT_OK, EXIT_API, EXIT_USAGE = 0, 1, 2

DEFAULT_TOKEN_VARIABLE = "PDMPOLICY_GITLAB_TOKEN"  # noqa: S105 - a variable name, not a secret
DEFAULT_TIMEOUT = 10.0
MAX_NOTE_CHARS = 1_000_000
"""GitLab refuses notes longer than this (Note::MAX_NOTE_LENGTH)."""

PER_PAGE = 100  # GitLab's maximum page size: the fewest requests for a long thread

# Each call fails at once on 429 rather than sleeping for an unbounded `Retry-After`; no
# retries on 5xx or timeouts either, so one run takes at most a few `--timeout`s.
_CALL: dict[str, Any] = {"obey_rate_limit": False, "retry_transient_errors": False}

Action = Literal["created", "updated", "unchanged"]
_T = TypeVar("_T")
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}


class NoteError(Exception):
    """A failure with its one-line message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """Where the note goes."""

    url: str  # GitLab's base URL, without /api/v4
    project: str  # numeric id or full path (group/project)
    mr_iid: int

    def describe(self) -> str:
        return f"merge request !{self.mr_iid} of project {self.project} on {self.url}"


@dataclass(frozen=True)
class Outcome:
    action: Action
    note_id: int
    other_marker_notes: tuple[int, ...] = ()  # later duplicates of ours, left alone


def positive_seconds(text: str) -> float:
    """argparse type for --timeout."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 600, got {text!r}")
    return value


def read_note(path: Path) -> str:
    """The note file's text; refuses anything that is not a pdmpolicy note."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoteError(
            f"no note file {path}: write it first with `pdmpolicy check --report markdown={path}`",
            EXIT_USAGE,
        ) from None
    except UnicodeDecodeError:
        raise NoteError(
            f"{path} is not UTF-8 text; it is not a pdmpolicy note", EXIT_USAGE
        ) from None
    except OSError as exc:
        raise NoteError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    if not has_marker(text):
        raise NoteError(
            f"{path} does not start with {MARKER}: it is not a pdmpolicy note "
            f"(write it with `pdmpolicy check --report markdown={path}`)",
            EXIT_USAGE,
        )
    if len(text) > MAX_NOTE_CHARS:
        raise NoteError(
            f"{path} has {len(text)} characters; GitLab accepts at most {MAX_NOTE_CHARS} in a note",
            EXIT_USAGE,
        )
    return text


def has_marker(body: str) -> bool:
    """True when the text's first line is the pdmpolicy marker."""
    return body.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r ") == MARKER


def _same_body(a: str, b: str) -> bool:
    """GitLab may normalise line ends and trailing blank lines; nothing a reader sees."""

    def norm(text: str) -> str:
        return text.replace("\r\n", "\n").strip("\n")

    return norm(a) == norm(b)


def resolve_target(
    gitlab_url: str | None,
    project: str | None,
    mr: str | None,
    environ: Mapping[str, str],
) -> Target:
    """The target from flags, else GitLab CI's predefined variables."""
    url = (gitlab_url or environ.get("CI_SERVER_URL", "")).strip()
    if not url:
        raise NoteError(
            "no GitLab URL: pass --gitlab-url (e.g. https://gitlab.example.com) "
            "or run in GitLab CI, which sets CI_SERVER_URL",
            EXIT_USAGE,
        )
    if not re.match(r"^https?://[^/\s]+", url):
        raise NoteError(
            f"--gitlab-url must be an http(s) URL such as https://gitlab.example.com, got {url!r}",
            EXIT_USAGE,
        )
    url = re.sub(r"/api/v4/?$", "", url.rstrip("/"))
    # A merge request from a fork lives in the target project: CI_MERGE_REQUEST_PROJECT_ID
    # names it, while CI_PROJECT_ID is the project the pipeline runs in.
    proj = (
        project or environ.get("CI_MERGE_REQUEST_PROJECT_ID") or environ.get("CI_PROJECT_ID") or ""
    ).strip()
    if not proj:
        raise NoteError(
            "no project: pass --project ID or PATH (group/project), or run in GitLab CI, "
            "which sets CI_PROJECT_ID",
            EXIT_USAGE,
        )
    raw_iid = (mr or environ.get("CI_MERGE_REQUEST_IID", "")).strip()
    if not raw_iid:
        raise NoteError(
            "no merge request: pass --mr IID, or run in a merge request pipeline "
            "(CI_MERGE_REQUEST_IID is set only there: `rules: - if: $CI_MERGE_REQUEST_IID`)",
            EXIT_USAGE,
        )
    if not raw_iid.isascii() or not raw_iid.isdigit() or int(raw_iid) < 1:
        raise NoteError(
            f"the merge request IID must be a positive number (the !N of the merge request), "
            f"got {raw_iid!r}",
            EXIT_USAGE,
        )
    return Target(url=url, project=proj, mr_iid=int(raw_iid))


def read_token(variable: str, environ: Mapping[str, str]) -> str:
    """The token from the environment variable; never from the command line."""
    token = environ.get(variable, "").strip()
    if not token:
        raise NoteError(
            f"no GitLab token: set the environment variable {variable} to a project, group "
            f"or personal access token with the `api` scope (a masked CI/CD variable)",
            EXIT_USAGE,
        )
    if not all(33 <= ord(ch) <= 126 for ch in token):
        # requests would refuse the header and quote the value in its error.
        raise NoteError(
            f"the token in {variable} contains spaces or characters a GitLab token never has: "
            f"check the variable's value",
            EXIT_USAGE,
        )
    return token


class _Api:
    """The few Notes API calls, each mapped to a clear failure."""

    def __init__(self, target: Target, token: str, token_variable: str, timeout: float) -> None:
        try:
            import gitlab  # the optional extra, needed only here
        except ImportError:
            raise NoteError(
                "posting the note needs python-gitlab: pip install 'pdmpolicy[mr]'", EXIT_USAGE
            ) from None
        self.target = target
        self.token = token
        self.token_variable = token_variable
        self.timeout = timeout
        # keep_base_url: follow pagination links on the URL we were given, even when
        # GitLab's external_url differs (a proxy, an internal address in CI).
        self.gl: gitlab.Gitlab = gitlab.Gitlab(
            target.url,
            private_token=token,
            timeout=timeout,
            keep_base_url=True,
            retry_transient_errors=False,
        )
        # Lazy objects: no request until the notes are listed.
        project = self.gl.projects.get(target.project, lazy=True)
        self.mr: ProjectMergeRequest = project.mergerequests.get(target.mr_iid, lazy=True)

    def close(self) -> None:
        self.gl.session.close()

    def current_user_id(self) -> int:
        answer = self._call("identify the token's user", lambda: self.gl.http_get("/user", **_CALL))
        user_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(user_id, int):
            raise self._malformed("identify the token's user")
        return user_id

    def notes(self) -> Iterator[dict[str, Any]]:
        """Every note of the merge request, oldest first, all pages."""
        step = "list the merge request's notes"

        def pages() -> Iterator[dict[str, Any]]:
            listing = self.mr.notes.list(
                iterator=True, per_page=PER_PAGE, sort="asc", order_by="created_at", **_CALL
            )
            for note in listing:
                yield note.attributes
            # python-gitlab follows the `Link` header; a server that announces another page
            # (X-Next-Page) without the link would make us miss our note and post a duplicate.
            if listing.next_page:
                raise self._malformed(step, "it announced another page without a Link to it")

        it = pages()
        while True:
            try:
                note = self._call(step, lambda: next(it, None))
            except NoteError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError):
                raise self._malformed(step) from None
            if note is None:
                return
            yield note

    def create(self, body: str) -> int:
        step = "create the note"
        note = self._call(step, lambda: self.mr.notes.create({"body": body}, **_CALL))
        note_id = note.attributes.get("id")
        if not isinstance(note_id, int):
            raise self._malformed(step)
        return note_id

    def update(self, note_id: int, body: str) -> None:
        self._call(
            f"update note {note_id}",
            lambda: self.mr.notes.update(note_id, {"body": body}, **_CALL),
        )

    # -- failures ------------------------------------------------------------------------

    def _call(self, step: str, fn: Callable[[], _T]) -> _T:
        import gitlab
        import requests

        try:
            return fn()
        except gitlab.exceptions.GitlabParsingError:
            raise self._malformed(step) from None
        except gitlab.exceptions.RedirectError:
            # A POST or PUT redirected (http -> https, a renamed host) would be replayed as GET.
            raise NoteError(
                f"GitLab at {self.target.url} redirected the request to {step}: pass the URL it "
                f"redirects to as --gitlab-url (https://, the canonical host)",
                EXIT_API,
            ) from None
        except gitlab.exceptions.GitlabError as exc:
            raise self._http_error(step, exc) from None
        except requests.exceptions.Timeout:
            raise NoteError(
                f"GitLab at {self.target.url} did not answer within {self.timeout:g} s "
                f"(trying to {step}): check the URL and the network, or raise --timeout",
                EXIT_API,
            ) from None
        except requests.exceptions.SSLError as exc:
            raise NoteError(
                f"TLS error talking to {self.target.url} (trying to {step}): "
                f"{self._reason(exc)}; check the URL and the CA bundle (REQUESTS_CA_BUNDLE)",
                EXIT_API,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise NoteError(
                f"cannot connect to GitLab at {self.target.url} ({self._reason(exc)}): "
                f"check --gitlab-url / CI_SERVER_URL and that the server is reachable",
                EXIT_API,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise NoteError(
                f"request to GitLab at {self.target.url} failed (trying to {step}): "
                f"{self._scrub(self._reason(exc))}",
                EXIT_API,
            ) from None

    def _http_error(self, step: str, exc: gitlab.exceptions.GitlabError) -> NoteError:
        code = exc.response_code
        server = self._scrub(" ".join(str(exc.error_message).split()))[:200]
        # GitLab's messages mostly carry the status ("404 Project Not Found"): say it once.
        status = f"{code} {_REASONS.get(code or 0, 'error')}"
        if server.startswith(f"{code} "):
            status = server
        elif server:
            status += f": {server}"
        where = self.target.describe()
        if code == 401:
            text = (
                f"GitLab refused the token in {self.token_variable} (401 Unauthorized): check "
                f"that it is the right token for {self.target.url}, not expired or revoked, "
                f"and has the `api` scope"
            )
        elif code == 403:
            text = (
                f"GitLab refused to {step} on {where} ({status}): check that the "
                f"token in {self.token_variable} has the `api` scope and its user may comment "
                f"on the project's merge requests (Reporter or higher), and that the merge "
                f"request's discussion is not locked"
            )
        elif code == 404 and step.startswith("identify"):
            text = (
                f"{self.target.url} has no GitLab API at /api/v4 (404 Not Found): check "
                f"--gitlab-url / CI_SERVER_URL (the base URL, e.g. https://gitlab.example.com)"
            )
        elif code == 404 and step.startswith("update"):
            text = (
                f"GitLab could not {step} on {where} (404 Not Found): it was deleted while "
                f"pdmpolicy ran; run the command again"
            )
        elif code == 404:
            text = (
                f"GitLab found no {where} ({status}): check --project / "
                f"CI_PROJECT_ID and --mr / CI_MERGE_REQUEST_IID, and that the token's user "
                f"can see the project (GitLab answers 404 for projects it hides)"
            )
        elif code == 429:
            text = (
                f"GitLab at {self.target.url} is rate limiting this token (429 Too Many "
                f"Requests, trying to {step}): try again later"
            )
        elif code is None:
            text = f"GitLab at {self.target.url} could not {step}: {server or type(exc).__name__}"
        else:
            text = (
                f"GitLab at {self.target.url} answered HTTP {code} (trying to {step} on "
                f"{where}): {server or 'no message'}"
            )
        return NoteError(text, EXIT_API)

    def _malformed(self, step: str, why: str = "") -> NoteError:
        detail = f": {why}" if why else ""
        return NoteError(
            f"{self.target.url} sent an answer that is not GitLab's API (trying to {step})"
            f"{detail}; check that --gitlab-url / CI_SERVER_URL is GitLab's base URL "
            f"(e.g. https://gitlab.example.com, without /api/v4)",
            EXIT_API,
        )

    def _reason(self, exc: BaseException) -> str:
        """A short reason from requests' long, nested exception text."""
        text = str(exc)
        for pattern, short in (
            (r"Connection refused", "connection refused"),
            (
                r"Name or service not known|nodename nor servname|getaddrinfo failed|"
                r"Temporary failure in name resolution|No address associated",
                "unknown host",
            ),
            (r"No route to host", "no route to host"),
            (r"Network is unreachable", "network unreachable"),
            (r"Connection reset", "connection reset"),
            (r"CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
            (r"RemoteDisconnected|Connection aborted", "the server closed the connection"),
        ):
            if re.search(pattern, text):
                return short
        return self._scrub(" ".join(text.split()))[:200]

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "[token]") if self.token else text


def post_note(api: _Api, body: str) -> Outcome:
    """Create or update the pdmpolicy note; never a second one."""
    me = api.current_user_id()
    ours = [
        note
        for note in api.notes()
        if not note.get("system")
        and isinstance(note.get("body"), str)
        and has_marker(note["body"])
        and isinstance(note.get("author"), dict)
        and note["author"].get("id") == me
    ]
    if not ours:
        return Outcome("created", api.create(body))
    first, rest = ours[0], tuple(n["id"] for n in ours[1:] if isinstance(n.get("id"), int))
    note_id = first.get("id")
    if not isinstance(note_id, int):
        raise api._malformed("list the merge request's notes", "a note without an id")
    if _same_body(first["body"], body):
        return Outcome("unchanged", note_id, rest)
    api.update(note_id, body)
    return Outcome("updated", note_id, rest)


def run(
    file: Path,
    *,
    gitlab_url: str | None = None,
    project: str | None = None,
    mr: str | None = None,
    token_variable: str = DEFAULT_TOKEN_VARIABLE,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The `pdmpolicy note` command: prints one line, returns the exit code."""
    env = os.environ if environ is None else environ
    try:
        body = read_note(file)
        target = resolve_target(gitlab_url, project, mr, env)
        token = read_token(token_variable, env)
        api = _Api(target, token, token_variable, timeout)
        try:
            outcome = post_note(api, body)
        finally:
            api.close()
    except NoteError as exc:
        print(f"pdmpolicy: error: {exc}", file=sys.stderr)
        return exc.exit_code
    where = f"(note {outcome.note_id}) on {target.describe()}"
    print(
        {
            "created": f"pdmpolicy: created the pdmpolicy note {where}",
            "updated": f"pdmpolicy: updated the pdmpolicy note {where}",
            "unchanged": f"pdmpolicy: the pdmpolicy note {where} is already up to date",
        }[outcome.action]
    )
    if outcome.other_marker_notes:
        others = ", ".join(str(n) for n in outcome.other_marker_notes)
        print(
            f"pdmpolicy: warning: the same user has more pdmpolicy notes on this merge "
            f"request ({others}); they were left as they are: delete them by hand",
            file=sys.stderr,
        )
    return EXIT_OK
