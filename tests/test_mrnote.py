"""`pdmpolicy note` against a fake GitLab on loopback.

The fake speaks the part of GitLab's REST API the command uses, as GitLab does: `GET
/api/v4/user` (who the token is), the merge request notes endpoints (`GET` with offset
pagination, `X-Next-Page` and a `Link` header; `POST`; `PUT .../notes/:id`, allowed to the
note's author only), `PRIVATE-TOKEN` authentication, 404 for unknown projects and merge
requests, projects addressed by id or URL-encoded path. python-gitlab makes no request when the
client is created (the project and merge request are lazy objects), so these are all the
requests there are. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

from pdmpolicy.cli import main
from pdmpolicy.reports.markdown import MARKER
from tests.loopback import offline, serving

TOKEN = "glpat-Sekr1tT0kenValue"  # noqa: S105 - the fake server's test token
OTHER_TOKEN = "glpat-SomeoneElse0000"  # noqa: S105
BOT = {"id": 11, "username": "pdmpolicy-bot", "name": "pdmpolicy bot"}
HUMAN = {"id": 12, "username": "reviewer", "name": "A Reviewer"}
PROJECT_ID, PROJECT_PATH, MR_IID = "42", "release/deployer", 7
NOTE = f"{MARKER}\n### :white_check_mark: pdmpolicy: 0 errors.\n\nfirst version\n"
NOTE_V2 = f"{MARKER}\n### :x: pdmpolicy: 1 error. Rendering is blocked.\n\nsecond version\n"
CI_VARIABLES = (
    "CI_SERVER_URL",
    "CI_PROJECT_ID",
    "CI_MERGE_REQUEST_PROJECT_ID",
    "CI_MERGE_REQUEST_IID",
    "PDMPOLICY_GITLAB_TOKEN",
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeGitLab:
    """State and knobs of the fake; the handler below serves it."""

    url: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {TOKEN: BOT, OTHER_TOKEN: HUMAN}
    )
    page_cap: int = 100  # the largest per_page the server grants
    fail: dict[str, int] = field(default_factory=dict)  # method -> status to answer with
    link: bool = True  # send the `Link` header (GitLab does)
    redirect_writes: bool = False  # answer POST/PUT with 301, as an http -> https redirect
    sleep: float = 0.0  # delay before every answer
    garbage: str | None = None  # "html": 200 text/html; "object": a JSON object for lists
    release: threading.Event = field(default_factory=threading.Event)
    next_id: int = 100

    def add(self, body: str, author: dict[str, Any], *, system: bool = False) -> dict[str, Any]:
        self.next_id += 1
        note = {
            "id": self.next_id,
            "type": None,
            "body": body,
            "author": dict(author),
            "system": system,
            "noteable_type": "MergeRequest",
            "noteable_iid": MR_IID,
            "created_at": f"2026-11-20T10:00:{self.next_id % 60:02d}.000Z",
        }
        self.notes.append(note)
        return note

    def marker_notes(self) -> list[dict[str, Any]]:
        return [n for n in self.notes if n["body"].startswith(MARKER)]

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        fake.requests.append(
            Request(method, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
        )
        if fake.sleep:
            fake.release.wait(fake.sleep)
        if fake.garbage == "html":
            page = b"<html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        if fake.redirect_writes and method != "GET":
            self.send_response(301)
            self.send_header("Location", f"{fake.url}{parts.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if method in fake.fail:
            status = fake.fail[method]
            self._send(status, {"message": f"{status} {self.responses[status][0]}"})
            return
        user = fake.users.get(self.headers.get("PRIVATE-TOKEN", ""))
        if user is None:
            self._send(401, {"message": "401 Unauthorized"})
            return
        if segments[:2] != ["api", "v4"]:
            self._send(404, {"error": "404 Not Found"})
            return
        route = segments[2:]
        if route == ["user"] and method == "GET":
            self._send(200, user)
            return
        if (
            len(route) < 5
            or route[0] != "projects"
            or route[1] not in (PROJECT_ID, PROJECT_PATH)
            or route[2] != "merge_requests"
        ):
            self._send(404, {"message": "404 Project Not Found"})
            return
        if route[3] != str(MR_IID) or route[4] != "notes":
            self._send(404, {"message": "404 Not found"})
            return
        if len(route) == 5 and method == "GET":
            self._list(fake, parse_qs(parts.query))
        elif len(route) == 5 and method == "POST":
            note = fake.add(body["body"], user)
            self._send(201, note)
        elif len(route) == 6 and method == "PUT":
            found = [n for n in fake.notes if str(n["id"]) == route[5]]
            if not found:
                self._send(404, {"message": "404 Not found"})
            elif found[0]["author"]["id"] != user["id"]:
                self._send(403, {"message": "403 Forbidden"})
            else:
                found[0]["body"] = body["body"]
                self._send(200, found[0])
        else:
            self._send(405, {"message": "405 Method Not Allowed"})

    def _list(self, fake: FakeGitLab, query: dict[str, list[str]]) -> None:
        per_page = min(int(query.get("per_page", ["20"])[0]), fake.page_cap)
        page = int(query.get("page", ["1"])[0])
        ordered = sorted(fake.notes, key=lambda n: int(n["id"]))
        if query.get("sort", ["desc"])[0] == "desc":
            ordered.reverse()
        total_pages = max(1, -(-len(ordered) // per_page))
        items = ordered[(page - 1) * per_page : page * per_page]
        if fake.garbage == "object":
            self._send(200, {"notes": items})
            return
        base = f"{fake.url}/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes"

        def link(n: int) -> str:
            rest = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}
            return f"{base}?{urlencode({'page': n, 'per_page': per_page, **rest})}"

        links = [f'<{link(1)}>; rel="first"', f'<{link(total_pages)}>; rel="last"']
        if page < total_pages:
            links.insert(0, f'<{link(page + 1)}>; rel="next"')
        self._send(
            200,
            items,
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Total": str(len(ordered)),
                "X-Total-Pages": str(total_pages),
                "X-Next-Page": str(page + 1) if page < total_pages else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                **({"Link": ", ".join(links)} if fake.link else {}),
            },
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGitLab) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout test) leaves a broken pipe here; not news.
        pass


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    offline(monkeypatch, TOKEN, *CI_VARIABLES)
    fake = FakeGitLab()
    with serving(Server(fake)) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.release.set()  # a request held by the test lets go before the server stops


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def note(tmp_path: Path, gitlab: FakeGitLab, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Write BODY to a note file and run `pdmpolicy note` on it against the fake."""

    def runner(body: str = NOTE, *args: str, target: bool = True) -> Run:
        path = tmp_path / "note.md"
        path.write_text(body, encoding="utf-8")
        where = ["--gitlab-url", gitlab.url, "--project", PROJECT_ID, "--mr", str(MR_IID)]
        code = main(["note", str(path), *(where if target else []), "--timeout", "2", *args])
        captured = capsys.readouterr()
        result = Run(code, captured.out, captured.err)
        text = result.out + result.err
        assert "Traceback" not in text
        assert "internal error" not in text
        assert TOKEN not in text
        assert OTHER_TOKEN not in text
        if code:
            assert result.err.startswith("pdmpolicy: error: ")
            assert len(result.err.strip().splitlines()) == 1, result.err
        return result

    return runner


# -- creating and updating ---------------------------------------------------------------


def test_first_run_creates_the_note(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.add("LGTM", HUMAN)
    result = note()
    assert result.code == 0, result.err
    assert "created the pdmpolicy note" in result.out
    (mine,) = gitlab.marker_notes()
    assert mine["body"] == NOTE
    assert mine["author"]["id"] == BOT["id"]
    assert [(r.method, r.path) for r in gitlab.writes()] == [
        ("POST", f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes")
    ]
    assert gitlab.writes()[0].body == {"body": NOTE}
    assert f"note {mine['id']}" in result.out


def test_the_token_goes_in_the_private_token_header_only(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    assert note().code == 0
    assert gitlab.requests
    for request in gitlab.requests:
        assert request.headers["PRIVATE-TOKEN"] == TOKEN
        assert TOKEN not in request.path
        assert TOKEN not in json.dumps(request.query)


def test_second_run_updates_the_same_note(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    assert note(NOTE).code == 0
    (first,) = gitlab.marker_notes()
    gitlab.requests.clear()
    result = note(NOTE_V2)
    assert result.code == 0, result.err
    assert "updated the pdmpolicy note" in result.out
    (mine,) = gitlab.marker_notes()
    assert mine["id"] == first["id"]
    assert mine["body"] == NOTE_V2
    assert len(gitlab.notes) == 1
    assert [(r.method, r.path) for r in gitlab.writes()] == [
        ("PUT", f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes/{first['id']}")
    ]


def test_an_identical_body_writes_nothing(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    assert note(NOTE).code == 0
    gitlab.requests.clear()
    result = note(NOTE)
    assert result.code == 0
    assert "already up to date" in result.out
    assert gitlab.writes() == []
    assert len(gitlab.marker_notes()) == 1


def test_gitlab_trimming_the_trailing_newline_is_still_identical(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.add(NOTE.rstrip("\n").replace("\n", "\r\n"), BOT)
    assert note(NOTE).code == 0
    assert gitlab.writes() == []


def test_a_marker_note_on_page_two_is_found(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.page_cap = 3
    for i in range(3):
        gitlab.add(f"comment {i}", HUMAN)
    mine = gitlab.add(NOTE, BOT)
    gitlab.add("a later comment", HUMAN)
    result = note(NOTE_V2)
    assert result.code == 0, result.err
    assert "updated" in result.out
    pages = [r.query.get("page", ["1"])[0] for r in gitlab.requests if r.path.endswith("/notes")]
    assert pages == ["1", "2"]
    assert [r.method for r in gitlab.writes()] == ["PUT"]
    assert mine["body"] == NOTE_V2
    assert len(gitlab.marker_notes()) == 1


def test_every_page_is_read_and_the_oldest_of_ours_is_kept(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.page_cap = 2
    for i in range(7):
        gitlab.add(f"comment {i}", HUMAN)
    oldest = gitlab.add(NOTE, BOT)
    duplicate = gitlab.add(NOTE, BOT)
    result = note(NOTE_V2)
    assert result.code == 0
    pages = [r.query.get("page", ["1"])[0] for r in gitlab.requests if r.path.endswith("/notes")]
    assert pages == ["1", "2", "3", "4", "5"]
    assert oldest["body"] == NOTE_V2
    assert duplicate["body"] == NOTE  # reported, not deleted
    assert f"({duplicate['id']})" in result.err
    assert len(gitlab.notes) == 9


def test_other_users_notes_are_untouched(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    quoted = gitlab.add(f"{MARKER}\nI pasted the note here to discuss it", HUMAN)
    plain = gitlab.add("please wait for the soak", HUMAN)
    system = gitlab.add(f"{MARKER}\nadded 1 commit", BOT, system=True)
    before = [dict(n) for n in (quoted, plain, system)]
    result = note()
    assert result.code == 0, result.err
    assert "created" in result.out
    assert [dict(n) for n in (quoted, plain, system)] == before
    assert [r.method for r in gitlab.writes()] == ["POST"]
    mine = [n for n in gitlab.marker_notes() if n["author"]["id"] == BOT["id"] and not n["system"]]
    assert len(mine) == 1


def test_ci_variables_are_the_defaults(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CI_SERVER_URL", gitlab.url + "/")
    monkeypatch.setenv("CI_PROJECT_ID", PROJECT_PATH)  # a path works as well as an id
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", str(MR_IID))
    result = note(target=False)
    assert result.code == 0, result.err
    assert gitlab.writes()[0].path.startswith("/api/v4/projects/release%2Fdeployer/")


def test_a_fork_merge_request_goes_to_the_target_project(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CI_SERVER_URL", gitlab.url)
    monkeypatch.setenv("CI_PROJECT_ID", "999")  # the fork the pipeline runs in
    monkeypatch.setenv("CI_MERGE_REQUEST_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", str(MR_IID))
    assert note(target=False).code == 0


def test_token_variable_is_configurable(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PDMPOLICY_GITLAB_TOKEN")
    monkeypatch.setenv("MR_BOT_TOKEN", TOKEN)
    assert note(NOTE, "--token-variable", "MR_BOT_TOKEN").code == 0


# -- usage and configuration: exit 2, no request ---------------------------------------


def test_missing_token_exits_2_naming_the_variable(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PDMPOLICY_GITLAB_TOKEN")
    result = note()
    assert result.code == 2
    assert "no GitLab token" in result.err
    assert "PDMPOLICY_GITLAB_TOKEN" in result.err
    assert gitlab.requests == []
    result = note(NOTE, "--token-variable", "MR_BOT_TOKEN")
    assert result.code == 2
    assert "MR_BOT_TOKEN" in result.err


def test_a_token_with_a_newline_is_refused_without_printing_it(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PDMPOLICY_GITLAB_TOKEN", "glpat-abc\ndef")
    result = note()
    assert result.code == 2
    assert "glpat-abc" not in result.err
    assert gitlab.requests == []


def test_missing_merge_request_iid_exits_2(
    gitlab: FakeGitLab, note, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CI_SERVER_URL", gitlab.url)
    monkeypatch.setenv("CI_PROJECT_ID", PROJECT_ID)
    result = note(target=False)
    assert result.code == 2
    assert "no merge request" in result.err
    assert "CI_MERGE_REQUEST_IID" in result.err
    assert gitlab.requests == []


def test_missing_url_and_bad_iid_exit_2(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    result = note(NOTE, "--project", PROJECT_ID, "--mr", "7", target=False)
    assert result.code == 2
    assert "CI_SERVER_URL" in result.err
    result = note(NOTE, "--mr", "!7")
    assert result.code == 2
    assert "positive number" in result.err
    assert gitlab.requests == []


def test_a_file_that_is_not_a_pdmpolicy_note_is_refused(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    result = note("# some other report\n" + NOTE)
    assert result.code == 2
    assert "not a pdmpolicy note" in result.err
    assert gitlab.requests == []


def test_a_missing_note_file_exits_2(gitlab: FakeGitLab, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code = main(["note", str(tmp_path / "absent.md"), "--gitlab-url", gitlab.url, "--mr", "7"])
    err = capsys.readouterr().err
    assert code == 2
    assert "pdmpolicy check --report markdown=" in err
    assert "Traceback" not in err


def test_help_names_the_variables_and_exit_codes(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        main(["note", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for word in ("CI_SERVER_URL", "CI_MERGE_REQUEST_IID", "PDMPOLICY_GITLAB_TOKEN", "exit codes"):
        assert word in out


# -- GitLab failures: exit 1, one line naming what to check -----------------------------


def test_401_says_to_check_the_token(gitlab: FakeGitLab, note, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PDMPOLICY_GITLAB_TOKEN", "glpat-Revoked000000000")
    result = note()
    assert result.code == 1
    assert "401" in result.err
    assert "token" in result.err
    assert "PDMPOLICY_GITLAB_TOKEN" in result.err
    assert "glpat-Revoked" not in result.err
    assert gitlab.writes() == []


def test_403_says_to_check_scope_and_role(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.fail = {"POST": 403}  # a Guest, or a locked discussion
    result = note()
    assert result.code == 1
    assert "403" in result.err
    assert "create the note" in result.err
    assert "api" in result.err
    assert "Reporter" in result.err


def test_404_project_says_to_check_project_and_mr(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    result = note(NOTE, "--project", "group/missing")
    assert result.code == 1
    assert "404" in result.err
    assert "--project" in result.err
    assert "group/missing" in result.err


def test_404_merge_request_says_to_check_the_iid(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    result = note(NOTE, "--mr", "8")
    assert result.code == 1
    assert "!8" in result.err
    assert "CI_MERGE_REQUEST_IID" in result.err


def test_a_server_too_slow_times_out(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    # The clock times the request, not the first import of the client (`note` imports
    # python-gitlab in run()): under pytest-xdist this may be the worker's first note.
    import gitlab as _client  # noqa: F401

    import pdmpolicy.reports.mrnote  # noqa: F401

    gitlab.sleep = 3
    start = time.monotonic()
    result = note(NOTE, "--timeout", "0.3")
    elapsed = time.monotonic() - start
    assert result.code == 1
    assert "did not answer within 0.3 s" in result.err
    assert "--timeout" in result.err
    assert elapsed < 2


def test_connection_refused_names_the_url(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = note(NOTE, "--gitlab-url", url)
    assert result.code == 1
    assert "connection refused" in result.err
    assert url in result.err
    assert "--gitlab-url" in result.err


def test_a_page_that_is_not_the_api_is_a_malformed_answer(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.garbage = "html"
    result = note()
    assert result.code == 1
    assert "not GitLab's API" in result.err
    assert "--gitlab-url" in result.err


def test_a_list_that_is_not_a_list_is_a_malformed_answer(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.garbage = "object"
    result = note()
    assert result.code == 1
    assert "not GitLab's API" in result.err
    assert gitlab.writes() == []


def test_pages_announced_without_a_link_are_not_silently_skipped(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.page_cap, gitlab.link = 1, False
    gitlab.add("comment", HUMAN)
    gitlab.add(NOTE, BOT)
    result = note(NOTE_V2)
    assert result.code == 1
    assert "another page" in result.err
    assert gitlab.writes() == []  # rather than a duplicate note


def test_a_redirected_write_says_which_url_to_use(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.redirect_writes = True
    result = note()
    assert result.code == 1
    assert "redirected" in result.err
    assert "--gitlab-url" in result.err
    assert gitlab.marker_notes() == []


def test_a_server_error_is_reported_with_its_status(gitlab: FakeGitLab, note) -> None:  # type: ignore[no-untyped-def]
    gitlab.fail = {"GET": 500}
    result = note()
    assert result.code == 1
    assert "HTTP 500" in result.err
