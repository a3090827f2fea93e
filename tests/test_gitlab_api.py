"""`verify --gitlab-url`: includes not in the repository read through GitLab's CI Lint API.

Against a loopback fake of `POST /projects/:id/ci/lint`, never the network: what is sent
(the include alone, its rules left out, the token in its header only), how the answer is
read (string and symbol keys), cached and refreshed, and every failure an exit 2 naming
the include, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import REPO_ROOT, Repo
from tests.loopback import offline, serving

TOKEN = "glpat-verify-test-token"  # noqa: S105 - a fake token for the fake server
EXECUTOR = (REPO_ROOT / "tests/fixtures/gitlab/unsafe-auto-retry.yml").read_text(encoding="utf-8")
PIPELINE = """\
include:
  - template: Deploy/Migrations.gitlab-ci.yml
    rules:
      - if: $CI_COMMIT_BRANCH == "main"
stages: [build, test, deploy]
build:
  stage: build
  script: [echo build]
"""


@dataclass
class FakeLint:
    """What the fake GitLab answers, and what it was asked."""

    url: str = ""
    merged: dict[str, str] = field(default_factory=dict)
    """Template name -> merged_yaml."""
    status: int = 200
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw)
        fake.requests.append(
            (unquote(self.path), {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if fake.status != 200:
            self._send(fake.status, {"message": "refused"})
            return
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self._send(401, {"message": "401 Unauthorized"})
            return
        (include,) = json.loads(body["content"])["include"]
        merged = fake.merged.get(include.get("template", ""))
        if merged is None:
            self._send(200, {"valid": False, "merged_yaml": None, "errors": ["not found"]})
            return
        self._send(200, {"valid": True, "merged_yaml": merged, "errors": [], "warnings": []})

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeLint) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLint]:
    offline(monkeypatch, TOKEN)
    fake = FakeLint(merged={"Deploy/Migrations.gitlab-ci.yml": "---\n" + EXECUTOR})
    with serving(Server(fake)) as url:
        fake.url = url
        yield fake


def verify(run, fake: FakeLint, *extra: str, cache: Path | None = None):  # type: ignore[no-untyped-def]
    options = ["--gitlab-url", fake.url, "--gitlab-project", "group/deploy"]
    options += ["--gitlab-cache", str(cache or Path("cache"))]
    return run("verify", ".gitlab-ci.yml", "--format", "json", *options, *extra)


def findings(result) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return [(f["policy"], f["path"], f["line"]) for f in json.loads(result.out)["findings"]]


def test_an_include_read_through_the_api_is_verified(repo: Repo, run, gitlab: FakeLint) -> None:  # type: ignore[no-untyped-def]
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = verify(run, gitlab)
    ((path, headers, body),) = gitlab.requests
    assert path == "/api/v4/projects/group/deploy/ci/lint"
    assert headers["private-token"] == TOKEN
    # The include alone, its rules left out: pdmpolicy models them itself.
    assert json.loads(body["content"]) == {
        "include": [{"template": "Deploy/Migrations.gitlab-ci.yml"}]
    }
    (cached,) = Path("cache").glob("*.yml")
    retry_line = (
        1
        + EXECUTOR.splitlines().index(
            "  retry: 2  # expect: gstg-kubernetes-post-deploy-migrations retry"
        )
        + 3
    )  # "---" and two header lines
    assert result.code == 1
    assert findings(result) == [
        ("pdm-at-most-once", cached.as_posix(), retry_line),
        ("pdm-no-auto-retry", cached.as_posix(), retry_line),
    ]
    assert TOKEN not in result.out + result.err


def test_the_answer_is_cached_and_refreshed_on_request(repo: Repo, run, gitlab: FakeLint) -> None:  # type: ignore[no-untyped-def]
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    first = verify(run, gitlab)
    second = verify(run, gitlab)
    assert len(gitlab.requests) == 1  # the second run sent nothing
    assert (first.code, first.out) == (second.code, second.out)
    verify(run, gitlab, "--gitlab-refresh")
    assert len(gitlab.requests) == 2


def test_without_gitlab_url_nothing_is_sent_and_the_include_is_not_read(
    repo: Repo,
    run,
    gitlab: FakeLint,  # type: ignore[no-untyped-def]
) -> None:
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = run("verify", ".gitlab-ci.yml", "--format", "json")
    assert gitlab.requests == []
    assert [f["message"].split(" is not read")[0] for f in json.loads(result.out)["findings"]] == [
        "include: template 'Deploy/Migrations.gitlab-ci.yml'"
    ]


def test_symbol_keyed_answers_of_older_gitlab_are_read(repo: Repo, run, gitlab: FakeLint) -> None:  # type: ignore[no-untyped-def]
    gitlab.merged["Deploy/Migrations.gitlab-ci.yml"] = (
        "---\n:gstg-kubernetes-post-deploy-migrations:\n  :stage: deploy\n  :retry: 2\n"
        "  :script:\n  - SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade\n"
    )
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = verify(run, gitlab)
    assert result.code == 1
    assert "pdm-no-auto-retry" in {policy for policy, _, _ in findings(result)}


def test_an_include_gitlab_cannot_merge_stays_not_read_with_its_reason(
    repo: Repo,
    run,
    gitlab: FakeLint,  # type: ignore[no-untyped-def]
) -> None:
    (repo.root / ".gitlab-ci.yml").write_text(
        PIPELINE.replace("Deploy/Migrations", "Missing"), encoding="utf-8"
    )
    result = verify(run, gitlab)
    (message,) = [f["message"] for f in json.loads(result.out)["findings"]]
    assert "is not read (GitLab's CI Lint API could not merge it: not found)" in message
    assert result.code == 0


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "refused the token in PDMPOLICY_GITLAB_TOKEN (401 Unauthorized)"),
        (403, "403 Forbidden"),
        (404, "project group/deploy was not found"),
        (500, "GitLab answered HTTP 500"),
    ],
)
def test_refusals_are_input_errors_at_the_include(
    repo: Repo,
    run,
    gitlab: FakeLint,
    status: int,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    gitlab.status = status
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = verify(run, gitlab)
    assert result.code == 2
    (error,) = json.loads(result.out)["errors"]
    assert (error["line"], words in error["message"]) == (2, True), error
    assert "Traceback" not in result.err and TOKEN not in result.out + result.err
    assert not Path("cache").exists() or not list(Path("cache").glob("*.yml"))


def test_no_connection_is_an_input_error(repo: Repo, run, gitlab: FakeLint) -> None:  # type: ignore[no-untyped-def]
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    closed = FakeLint(url="http://127.0.0.1:9")  # the discard port: nothing listens
    result = verify(run, closed)
    assert result.code == 2
    (error,) = json.loads(result.out)["errors"]
    assert "cannot connect" in error["message"] and "Traceback" not in result.err


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--gitlab-project", "1"], "--gitlab-project is only used with --gitlab-url"),
        (["--gitlab-url", "http://127.0.0.1:9"], "--gitlab-url needs --gitlab-project"),
        (["--gitlab-url", "ftp://x", "--gitlab-project", "1"], "is not an http(s) URL"),
    ],
)
def test_option_mistakes_exit_2(repo: Repo, run, arguments: list[str], words: str) -> None:  # type: ignore[no-untyped-def]
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = run("verify", ".gitlab-ci.yml", *arguments)
    assert result.code == 2 and words in result.err, result.err


def test_a_missing_token_exits_2_naming_the_variable(
    repo: Repo,
    run,
    gitlab: FakeLint,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.delenv("PDMPOLICY_GITLAB_TOKEN")
    (repo.root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    result = verify(run, gitlab)
    assert result.code == 2 and "PDMPOLICY_GITLAB_TOKEN" in result.err
    assert gitlab.requests == []


def test_the_verify_default_token_variable_is_the_clients() -> None:
    from pdmpolicy.cli import verify as command
    from pdmpolicy.gitlab import api

    assert command.TOKEN_VARIABLE == api.DEFAULT_TOKEN_VARIABLE


def test_only_includes_not_in_the_repository_are_sent_with_their_inputs(
    repo: Repo,
    run,
    gitlab: FakeLint,  # type: ignore[no-untyped-def]
) -> None:
    (repo.root / "ci").mkdir()
    (repo.root / "ci" / "lint.yml").write_text("lint:\n  script: [echo]\n", encoding="utf-8")
    (repo.root / ".gitlab-ci.yml").write_text(
        "include:\n  - local: ci/lint.yml\n  - project: group/templates\n"
        "    file: /deploy.yml\n    ref: v2\n    inputs: {environment: gstg}\n",
        encoding="utf-8",
    )
    verify(run, gitlab)
    ((_, _, body),) = gitlab.requests
    assert json.loads(body["content"]) == {
        "include": [
            {
                "project": "group/templates",
                "file": "/deploy.yml",
                "ref": "v2",
                "inputs": {"environment": "gstg"},
            }
        ]
    }
