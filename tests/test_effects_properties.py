"""Properties of effect recognition: a hidden PDM command is never classified `none`, and
what the analysis can see through it recognises exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, note

from pdmpolicy.gitlab.analysis import DRY_RUN, NONE, UNKNOWN, analyse
from tests.builders import ci_job, ci_pipeline
from tests.strategies import HARMLESS_COMMANDS, HiddenScript, hidden_scripts


def classify(script: HiddenScript) -> str:
    note(f"steps: {script.steps}")
    note("script:\n" + "\n".join(script.lines))
    for path, text in script.files.items():
        note(f"{path}:\n{text}")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for path, text in script.files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
        pipeline = ci_pipeline(ci_job("j", *script.lines))
        effect = analyse(pipeline, root=root).effect("j")
        note(f"effect: {effect.describe()}")
        return effect.effect


@given(hidden_scripts())
def test_a_hidden_pdm_command_is_never_classified_none(script: HiddenScript) -> None:
    found = classify(script)
    # Never less dangerous than the truth: an executor, or unknown. Never none or dry-run.
    assert found not in (NONE, DRY_RUN)
    if script.transparent:
        assert found != UNKNOWN, "a spelling the reader sees through is recognised exactly"


@given(hidden_scripts(HARMLESS_COMMANDS))
def test_a_harmless_command_seen_through_is_not_an_executor(script: HiddenScript) -> None:
    found = classify(script)
    if script.transparent:
        assert found == NONE, "no cry of wolf for what the reader can see"
    else:
        assert found in (NONE, UNKNOWN)
