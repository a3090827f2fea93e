"""The script reader: which programs a job's script runs, and with which environment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.shell import Command, ShellSyntaxError, commands, read_script


def read(*lines: str) -> list[Command]:
    return commands([(line, Loc("ci.yml", number)) for number, line in enumerate(lines, 1)])


def programs(*lines: str) -> list[str]:
    return [command.program for command in read(*lines)]


def only(*lines: str) -> Command:
    (command,) = [c for c in read(*lines) if c.program == "k-ctl"]
    return command


# Quoting and words


def test_plain_words() -> None:
    (command,) = read("k-ctl -e gstg upgrade")
    assert command.program == "k-ctl"
    assert command.args == ("-e", "gstg", "upgrade")
    assert command.assigned == {}
    assert command.stripped == frozenset()
    assert not command.clean_environment
    assert command.loc == Loc("ci.yml", 1)
    assert command.text == "k-ctl -e gstg upgrade"


def test_quotes_keep_spaces_and_disappear() -> None:
    (command,) = read("""k-ctl -e 'gstg main' "up grade" it\\'s""")
    assert command.args == ("-e", "gstg main", "up grade", "it's")


def test_quoted_program_name_is_the_program() -> None:
    assert programs("'k-ctl' upgrade") == ["k-ctl"]
    assert programs('"k-ctl" upgrade') == ["k-ctl"]


def test_double_quotes_keep_operators_and_single_quotes_literal() -> None:
    (command,) = read("""echo "a; b && c | d 'e'" 'f "g" $h'""")
    assert command.args == ("a; b && c | d 'e'", 'f "g" $h')


def test_backslash_escapes_inside_double_quotes() -> None:
    (command,) = read(r'echo "a \"b\" \\ \$HOME"')
    assert command.args == (r'a "b" \ $HOME',)


# Separators


@pytest.mark.parametrize(
    "line",
    [
        "a; b && c || d | e & f",
        "a;b&&c||d|e&f",
        "a\nb\nc\nd\ne\nf",
        "( a ) ; { b; } && c |& d ;; e & f",
    ],
)
def test_separators_split_simple_commands(line: str) -> None:
    assert programs(line) == ["a", "b", "c", "d", "e", "f"]


def test_operators_inside_quotes_do_not_split() -> None:
    assert programs("echo 'k-ctl; upgrade' \"&& k-ctl\"") == ["echo"]


def test_a_line_break_inside_a_block_script_separates_commands() -> None:
    # Loaded GitLab CI files can hold `- |` blocks: one script item, several lines.
    assert programs("echo start\nk-ctl -e gstg upgrade\n") == ["echo", "k-ctl"]


def test_a_line_continuation_joins_words() -> None:
    (command,) = read("k-ctl -e gstg \\\n  upgrade")
    assert command.args == ("-e", "gstg", "upgrade")


# Comments


def test_a_comment_ends_the_line() -> None:
    assert programs("echo hi # k-ctl upgrade") == ["echo"]
    assert programs("# k-ctl -e gstg upgrade") == []
    assert programs("echo a;# k-ctl upgrade") == ["echo"]


def test_a_hash_inside_a_word_is_not_a_comment() -> None:
    # POSIX: `#` starts a comment only at the start of a word.
    command = only("PASSWORD=abc#123 k-ctl -e gstg upgrade")
    assert command.assigned == {"PASSWORD": "abc#123"}
    assert command.args == ("-e", "gstg", "upgrade")
    assert read("echo hi#there")[0].args == ("hi#there",)


def test_a_quoted_hash_is_not_a_comment() -> None:
    assert read("echo '# not a comment' \"#\"")[0].args == ("# not a comment", "#")


def test_a_comment_ends_at_the_line_break_of_a_block() -> None:
    assert programs("echo a # note\nk-ctl upgrade") == ["echo", "k-ctl"]


# Redirections


@pytest.mark.parametrize(
    "line",
    [
        "k-ctl -e gstg upgrade > out.txt",
        "k-ctl -e gstg upgrade >out.txt 2>&1",
        "k-ctl -e gstg 2>/dev/null upgrade",
        "k-ctl >>log -e gstg upgrade",
        "k-ctl -e gstg upgrade &> log",
        "k-ctl -e gstg upgrade < /dev/null",
        "< input k-ctl -e gstg upgrade",
    ],
)
def test_redirections_and_their_targets_are_not_arguments(line: str) -> None:
    assert only(line).args == ("-e", "gstg", "upgrade")


def test_fd_duplication_is_not_a_background_job() -> None:
    assert programs("k-ctl -e gstg upgrade 2>&1 | tee log") == ["k-ctl", "tee"]


# Inline assignments


def test_inline_assignments_belong_to_that_process_only() -> None:
    found = read("A=1 B='x y' k-ctl upgrade; k-ctl list")
    assert found[0].assigned == {"A": "1", "B": "x y"}
    assert found[1].assigned == {}


def test_a_quoted_assignment_is_a_program_name() -> None:
    assert programs('"A=1" k-ctl upgrade') == ["A=1"]


def test_a_bare_assignment_does_not_reach_later_processes() -> None:
    assert only("SKIP_POST_DEPLOYMENT_MIGRATIONS=false", "k-ctl upgrade").assigned == {}
    assert only("A=1; k-ctl upgrade").assigned == {}


def test_an_invalid_name_is_not_an_assignment() -> None:
    assert programs("1A=x k-ctl upgrade") == ["1A=x"]
    assert programs("A-B=x k-ctl upgrade") == ["A-B=x"]


# env


def test_env_unset_short_options() -> None:
    command = only("env -u A -u B k-ctl upgrade")
    assert command.stripped == {"A", "B"}
    assert command.args == ("upgrade",)


def test_env_unset_long_and_attached_options() -> None:
    assert only("env --unset=A -uB --unset C k-ctl upgrade").stripped == {"A", "B", "C"}


def test_env_ignore_environment() -> None:
    command = only("env -i PATH=/usr/bin k-ctl upgrade")
    assert command.clean_environment
    assert command.assigned == {"PATH": "/usr/bin"}


def test_env_ignore_environment_drops_what_the_script_exported() -> None:
    command = only("export AUTO_DEPLOY=true", "env -i k-ctl upgrade")
    assert command.clean_environment
    assert command.assigned == {}


def test_env_assignments_and_unsets_apply_in_order() -> None:
    assert only("env -u A A=2 k-ctl x").assigned == {"A": "2"}
    assert only("env -u A A=2 k-ctl x").stripped == frozenset()
    assert only("A=1 env -u A k-ctl x").assigned == {}
    assert only("A=1 env -u A k-ctl x").stripped == {"A"}


def test_env_option_arguments_are_not_the_program() -> None:
    assert only("env -C /srv -u A k-ctl upgrade").stripped == {"A"}
    assert programs("env -- k-ctl x") == ["k-ctl"]


def test_env_split_string() -> None:
    command = only("env -S 'k-ctl -e gstg' upgrade")
    assert command.args == ("-e", "gstg", "upgrade")


def test_env_alone_runs_nothing_we_track() -> None:
    assert programs("env") == []
    assert programs("env -u") == []


def test_path_qualified_env() -> None:
    assert only("/usr/bin/env -u AUTO_DEPLOY k-ctl upgrade").stripped == {"AUTO_DEPLOY"}


# export and unset across lines


def test_export_reaches_every_later_process() -> None:
    found = read("export A=1 B=2", "k-ctl upgrade", "k-ctl list")
    assert [c.assigned for c in found] == [{"A": "1", "B": "2"}] * 2
    assert [c.loc.line for c in found] == [2, 3]


def test_export_does_not_reach_back() -> None:
    found = read("k-ctl list", "export A=1", "k-ctl upgrade")
    assert [c.assigned for c in found] == [{}, {"A": "1"}]


def test_unset_strips_for_every_later_process() -> None:
    found = read("unset AUTO_DEPLOY GITLAB_IMAGE_TAG", "echo hi", "k-ctl upgrade")
    assert [c.stripped for c in found] == [{"AUTO_DEPLOY", "GITLAB_IMAGE_TAG"}] * 2


def test_unset_removes_an_exported_value() -> None:
    command = only("export A=1 B=2", "unset A", "k-ctl upgrade")
    assert command.assigned == {"B": "2"}
    assert command.stripped == {"A"}


def test_unset_variable_option_and_function_option() -> None:
    assert only("unset -v A", "k-ctl x").stripped == {"A"}
    # `unset -f` removes a shell function of that name; the variable stays.
    assert only("unset -f AUTO_DEPLOY", "k-ctl x").stripped == frozenset()


def test_setting_again_after_unsetting_with_export() -> None:
    command = only("unset A", "export A=2", "k-ctl upgrade")
    assert command.assigned == {"A": "2"}
    assert command.stripped == frozenset()


def test_setting_again_inline_after_unsetting() -> None:
    command = only("unset A", "A=3 k-ctl upgrade")
    assert command.assigned == {"A": "3"}
    assert command.stripped == frozenset()


def test_a_bare_assignment_after_unsetting_is_not_exported() -> None:
    # `unset` drops the export attribute: the new value stays in the shell.
    command = only("unset AUTO_DEPLOY", "AUTO_DEPLOY=true", "k-ctl upgrade")
    assert command.stripped == {"AUTO_DEPLOY"}
    assert command.assigned == {}


def test_exporting_a_shell_variable_after_unsetting_it() -> None:
    command = only("unset AUTO_DEPLOY", "AUTO_DEPLOY=true", "export AUTO_DEPLOY", "k-ctl x")
    assert command.assigned == {"AUTO_DEPLOY": "true"}
    assert command.stripped == frozenset()


def test_assigning_an_exported_variable_changes_what_children_see() -> None:
    assert only("export A=1", "A=2", "k-ctl x").assigned == {"A": "2"}


def test_export_without_a_value_of_an_unknown_variable_changes_nothing() -> None:
    assert only("export A", "k-ctl x").assigned == {}


def test_export_n_takes_the_variable_out_of_the_environment() -> None:
    assert only("export A=1", "export -n A", "k-ctl x").stripped == {"A"}


def test_an_assignment_before_export_is_for_export_only() -> None:
    assert only("X=1 export A=2", "k-ctl x").assigned == {"A": "2"}


# sh -c


def test_sh_c_is_read_as_a_script() -> None:
    found = read("sh -c 'A=1 k-ctl upgrade; echo done'")
    assert [c.program for c in found] == ["k-ctl", "echo"]
    assert found[0].assigned == {"A": "1"}
    assert all(c.loc == Loc("ci.yml", 1) for c in found)


def test_sh_c_inherits_the_outer_environment_changes() -> None:
    command = only("export A=1", 'env -u AUTO_DEPLOY B=2 bash -c "unset C; k-ctl upgrade"')
    assert command.assigned == {"A": "1", "B": "2"}
    assert command.stripped == {"AUTO_DEPLOY", "C"}


def test_sh_c_under_env_i_is_clean() -> None:
    assert only("env -i sh -c 'k-ctl up'").clean_environment


def test_nested_shells() -> None:
    command = only("""sh -c "bash -c 'env -u AUTO_DEPLOY k-ctl -e gstg upgrade'" """)
    assert command.stripped == {"AUTO_DEPLOY"}
    assert command.args == ("-e", "gstg", "upgrade")


def test_exports_inside_sh_c_stay_inside() -> None:
    found = read("sh -c 'export A=1; k-ctl list'", "k-ctl upgrade")
    assert [c.assigned for c in found] == [{"A": "1"}, {}]


@pytest.mark.parametrize(
    "line",
    [
        "sh -ec 'k-ctl upgrade'",
        "bash -lc 'k-ctl upgrade'",
        "bash -e -c 'k-ctl upgrade'",
        "bash -o pipefail -c 'k-ctl upgrade'",
        "bash --noprofile --norc -c 'k-ctl upgrade'",
        "/bin/sh -c 'k-ctl upgrade'",
        "dash -c 'k-ctl upgrade' name arg",
    ],
)
def test_every_way_of_passing_c(line: str) -> None:
    assert only(line).args == ("upgrade",)


def test_a_shell_running_a_file_is_opaque() -> None:
    assert programs("bash deploy.sh -c") == ["bash"]
    assert programs("sh -c") == []


# Programs


def test_path_qualified_programs_are_named_by_their_base_name() -> None:
    command = only("/usr/local/bin/k-ctl -e gstg upgrade")
    assert command.program == "k-ctl"
    assert command.args == ("-e", "gstg", "upgrade")
    assert programs("./bin/deploy-vms") == ["deploy-vms"]


@pytest.mark.parametrize(
    "line",
    [
        "exec k-ctl upgrade",
        "command k-ctl upgrade",
        "command -p k-ctl upgrade",
        "time k-ctl upgrade",
        "time -p k-ctl upgrade",
        "nohup k-ctl upgrade",
        "timeout 3h k-ctl upgrade",
        "timeout -s KILL -k 5m 3h k-ctl upgrade",
        "nice -n 10 k-ctl upgrade",
        "timeout 3h env -u AUTO_DEPLOY k-ctl upgrade",
    ],
)
def test_wrappers_run_the_program_they_are_given(line: str) -> None:
    assert only(line).args == ("upgrade",)


def test_exec_c_clears_the_environment() -> None:
    assert only("export A=1", "exec -c k-ctl upgrade").clean_environment


def test_command_v_runs_nothing() -> None:
    assert programs("command -v k-ctl") == []


@pytest.mark.parametrize(
    "line",
    [
        "if true; then k-ctl upgrade; fi",
        'if [ -n "$X" ]; then echo; else k-ctl upgrade; fi',
        "while false; do k-ctl upgrade; done",
        "! k-ctl upgrade",
        "{ k-ctl upgrade; }",
        "for i in 1 2; do k-ctl upgrade; done",
        "deploy() { k-ctl upgrade; }",
    ],
)
def test_commands_inside_compound_commands_are_found(line: str) -> None:
    assert only(line).args == ("upgrade",)


def test_a_reserved_word_that_is_quoted_is_a_program() -> None:
    assert programs("'then' k-ctl") == ["then"]


@pytest.mark.parametrize(
    "line",
    [
        "echo $(k-ctl upgrade)",
        "echo `k-ctl upgrade`",
        'echo "result: $(k-ctl upgrade)"',
        "diff <(k-ctl upgrade) expected",
        "VERSION=$(k-ctl upgrade)",
    ],
)
def test_command_substitutions_run_too(line: str) -> None:
    assert only(line).args == ("upgrade",)


def test_substitutions_inside_expansions_run_too() -> None:
    assert only("echo ${VERSION:-$(k-ctl upgrade)}").args == ("upgrade",)
    assert only("echo $((1 + $(k-ctl upgrade)))").args == ("upgrade",)


def test_a_substituted_word_holds_a_placeholder_not_the_command() -> None:
    # The output is unknown; a shell given the word must not run the command again.
    found = read('sh -c "echo $(k-ctl upgrade)"')
    assert [(c.program, c.args) for c in found] == [
        ("k-ctl", ("upgrade",)),
        ("echo", ("{output}",)),
    ]


def test_arithmetic_and_parameter_expansions_are_not_commands() -> None:
    assert programs("echo $((1 + 2)) ${A:-k-ctl upgrade}") == ["echo"]


# Errors


@pytest.mark.parametrize(
    "line",
    [
        "echo 'unbalanced",
        'echo "unbalanced',
        "sh -c 'echo \"x'",
        "echo $(k-ctl upgrade",
        "echo `k-ctl upgrade",
        'echo "it\\"s',
    ],
)
def test_unbalanced_quotes_raise_a_shell_syntax_error(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        read(line)


def test_read_script_keeps_the_commands_around_a_bad_line() -> None:
    lines = [
        ("k-ctl -e gstg upgrade", Loc("ci.yml", 1)),
        ("echo 'oops", Loc("ci.yml", 2)),
        ("k-ctl -e gstg list", Loc("ci.yml", 3)),
    ]
    found, errors = read_script(lines)
    assert [c.args[-1] for c in found] == ["upgrade", "list"]
    assert errors == [(Loc("ci.yml", 2), "No closing quotation")]
    with pytest.raises(ShellSyntaxError, match="No closing quotation"):
        commands(lines)


# Properties

WORD = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


def quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


@given(st.lists(WORD, min_size=1, max_size=6))
def test_single_quoting_any_words_reads_them_back(words: list[str]) -> None:
    (command,) = read(" ".join(quote(word) for word in ["k-ctl", *words]))
    assert command.args == tuple(words)


@given(st.lists(st.sampled_from(["echo a", "k-ctl up", "env -u A k-ctl x"]), min_size=1))
def test_joining_lines_with_separators_reads_the_same_commands(lines: list[str]) -> None:
    one_by_one = [(c.program, c.args) for c in read(*lines)]
    for separator in ("; ", " && ", " || ", " | ", "\n"):
        joined = read(separator.join(lines))
        assert [(c.program, c.args) for c in joined] == one_by_one


@pytest.mark.parametrize(
    "line",
    [
        "echo " + "$(" * 3000 + ")" * 3000,
        "echo " + '"$(' * 3000 + ')"' * 3000,
        "sh -c " + "'sh -c \"sh -c " * 20,
    ],
)
def test_deep_nesting_is_refused_not_a_crash(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        read(line)


def test_a_few_levels_of_nesting_are_read() -> None:
    line = "echo " + '"$(' * 5 + "k-ctl -e gstg upgrade" + ')"' * 5
    assert only(line).args == ("-e", "gstg", "upgrade")
    nested = "sh -c \"bash -c 'echo $(env -u AUTO_DEPLOY k-ctl -e gstg upgrade)'\""
    assert only(nested).stripped == {"AUTO_DEPLOY"}
