"""Includes that are not in the repository, read through GitLab's CI Lint API (optional).

`verify --gitlab-url URL --gitlab-project ID` sends each include that cannot be read
offline (`project`, `remote`, `template`, `component`), alone, as the content of a CI
configuration to `POST /projects/:id/ci/lint`, and reads GitLab's answer `merged_yaml`:
that include with its own includes, `extends` and `!reference` resolved by GitLab
(docs/gitlab-ci-semantics.md §14). The include's own `rules:` are left out of what is sent
(pdmpolicy models them, `include_rules.py`); `inputs:` are sent, so GitLab applies them.

Each answer is kept in a cache directory as a YAML file named by the SHA-256 of the
GitLab URL, the project and the content sent; findings in that content point into the
cached file. A later run reads the cached file and sends nothing. Nothing here runs
unless those options are given; no token, no network.

Failures are input errors at the include (exit 2): no token, the token refused (401,
403), the project not found (404), no connection, a timeout, an answer that is not
GitLab's. GitLab answering that the include itself is not valid CI configuration (a file
missing in the other project, an `extends` into the including file) leaves the include
not read, with GitLab's reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc

DEFAULT_TOKEN_VARIABLE = "PDMPOLICY_GITLAB_TOKEN"  # noqa: S105 - a variable name, not a secret
TIMEOUT = 20.0
"""Seconds to wait for each answer; a merge of nested project includes can take a while."""
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""GitLab limits a CI configuration to a few MiB; anything larger is not its answer."""


def default_cache() -> Path:
    """The user's cache directory (XDG_CACHE_HOME, else ~/.cache) for these answers."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pdmpolicy" / "gitlab-ci-lint"


def _string_keyed(merged: str) -> str:
    """GitLab's merged YAML with string keys. GitLab before 15.x wrote it with Ruby symbol
    keys (`:job:`), which are names all the same; later versions write strings (kept as
    written). Raises ValueError for what is not a YAML mapping."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    reader = YAML(typ="safe", pure=True)
    try:
        document = reader.load(merged)
    except YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else "not YAML") from None
    if not isinstance(document, dict):
        raise ValueError("not a mapping")
    if not document or not all(isinstance(k, str) and k.startswith(":") for k in document):
        return merged

    def strings(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                (k[1:] if isinstance(k, str) and k.startswith(":") else k): strings(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [strings(item) for item in value]
        return value

    out = io.StringIO()
    writer = YAML(typ="safe", pure=True)
    writer.default_flow_style = False
    writer.dump(strings(document), out)
    return out.getvalue()


@dataclass
class CiLint:
    """GitLab's CI Lint API for one project, with the cache of its answers."""

    url: str
    """GitLab's base URL, without /api/v4."""
    project: str
    """Numeric id or full path (group/project) of the project whose context GitLab uses:
    its CI/CD variables, its files for `include: local` inside what is sent."""
    token: str
    token_variable: str
    cache: Path
    timeout: float = TIMEOUT
    refresh: bool = False
    """Ask GitLab again even when an answer is cached (and replace it)."""

    def read(self, include: dict[str, Any], loc: Loc) -> Path | str:
        """The cached file holding GitLab's merge of `include` (one include item), or why
        it is not read (GitLab says it is not valid configuration)."""
        content = json.dumps({"include": [include]}, sort_keys=True)
        key = hashlib.sha256(
            json.dumps([self.url.rstrip("/"), self.project, content]).encode()
        ).hexdigest()
        cached = self.cache / f"{key}.yml"
        refused = self.cache / f"{key}.refused"
        if not self.refresh:
            if cached.is_file():
                return cached
            if refused.is_file():
                return refused.read_text(encoding="utf-8")
        answer = self._post(content, loc)
        merged = answer.get("merged_yaml")
        errors = [str(e) for e in answer.get("errors") or []]
        if not isinstance(merged, str) or not merged.strip():
            reason = "GitLab's CI Lint API could not merge it: " + (
                "; ".join(errors) or "no merged configuration in its answer"
            )
            self._store(refused, reason, loc)
            return reason
        try:
            text = _string_keyed(merged)
        except ValueError as exc:
            raise self._error(loc, f"its merged_yaml cannot be read ({exc})") from None
        header = (
            f"# GitLab's merge of {content}\n# from {self.url} (project {self.project}), "
            "through the CI Lint API; written by pdmpolicy verify\n"
        )
        text = header + text
        self._store(cached, text, loc)
        return cached

    # --- the request ------------------------------------------------------------------

    def _post(self, content: str, loc: Loc) -> dict[str, Any]:
        project = urllib.parse.quote(self.project, safe="")
        endpoint = f"{self.url.rstrip('/')}/api/v4/projects/{project}/ci/lint"
        body = json.dumps({"content": content, "dry_run": False}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the user's GitLab
            endpoint,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "PRIVATE-TOKEN": self.token},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise self._http_error(loc, exc.code) from None
        except TimeoutError:
            raise self._error(loc, f"no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._error(loc, f"no answer within {self.timeout:g} s") from None
            raise self._error(loc, f"cannot connect ({self._scrub(str(exc.reason))})") from None
        except (OSError, ValueError) as exc:
            raise self._error(loc, f"the request failed ({self._scrub(str(exc))})") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise self._error(loc, "its answer is larger than any CI configuration")
        try:
            answer = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._error(loc, "its answer is not JSON") from None
        if not isinstance(answer, dict):
            raise self._error(loc, "its answer is not a CI Lint result")
        return answer

    def _http_error(self, loc: Loc, status: int) -> InputError:
        hints = {
            401: f"GitLab refused the token in {self.token_variable} (401 Unauthorized): "
            f"check that it is a token for {self.url}, not expired or revoked",
            403: f"the token in {self.token_variable} may not lint CI configuration of "
            f"project {self.project} (403 Forbidden): it needs the api scope (or "
            "read_api) and a user who may create pipelines there",
            404: f"project {self.project} was not found on {self.url} (404 Not Found): "
            "check --gitlab-project, and that the token's user can see it",
            429: f"GitLab at {self.url} is rate limiting this token (429 Too Many Requests): "
            "retry later; answers already received are cached",
        }
        return self._error(loc, hints.get(status, f"GitLab answered HTTP {status}"))

    def _error(self, loc: Loc, why: str) -> InputError:
        return InputError.at(
            loc,
            f"this include cannot be read through GitLab's CI Lint API at {self.url}: "
            f"{self._scrub(why)}",
            "run without --gitlab-url to verify with this include not read",
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "[token]") if self.token else text

    def _store(self, path: Path, text: str, loc: Loc) -> None:
        from pdmpolicy.output.atomic import write_files

        try:
            write_files({path: text})
        except OSError as exc:
            raise InputError.at(
                loc,
                f"cannot write GitLab's answer to the cache {self.cache}: {exc.strerror}",
                "choose another directory with --gitlab-cache",
            ) from None
