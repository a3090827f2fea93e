"""Coverage-guided fuzzing of the two YAML readers on raw bytes (atheris, libFuzzer).

    python tests/fuzz/atheris_readers.py -runs=N [-max_len=4096] [SEED_DIRECTORY...]

Each input goes to the environment/policy reader (`load.parse_document`) and to the GitLab CI
reader (`gitlab.yaml.parse_documents`, after the same decoding). An `InputError` is a
refusal and fine; any other exception is a crash, reported by libFuzzer with the input.
Not a test module: run it directly or through `tests/fuzz/run.py` (nox session `fuzz`).
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["pdmpolicy", "ruamel"]):
    from pdmpolicy.core.errors import InputError
    from pdmpolicy.environments.load import decode_text, parse_document
    from pdmpolicy.gitlab.yaml import parse_documents


def one_input(data: bytes) -> None:
    with contextlib.suppress(InputError):
        parse_document("environments/x.yml", data)
    with contextlib.suppress(InputError):
        parse_documents(".gitlab-ci.yml", decode_text(".gitlab-ci.yml", data))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
