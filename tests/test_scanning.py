"""`templateto-bridge scan`: keys found by format and checksum in files and directories, with
their place and hint and never their value; look-alikes, binary files, links and .git left out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from connector import keys, scanning
from connector.cli import main


def scan(*paths: Path | str, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, ["scan", *map(str, paths)], catch_exceptions=False)
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, ["scan", *map(str, paths)], catch_exceptions=False)
    finally:
        os.chdir(previous)


def hint(value: str) -> str:
    return "tt_live_…" + value[-4:]


def mistyped(value: str) -> str:
    """The value with one character of its random part changed: the checksum no longer fits."""
    changed = "A" if value[20] != "A" else "B"
    return value[:20] + changed + value[21:]


def test_a_key_in_a_file_is_reported_by_file_line_and_hint_and_exits_1(tmp_path: Path) -> None:
    value = keys.generate()
    (tmp_path / "settings.py").write_text(f'DEBUG = True\n\nAPI_KEY = "{value}"\n')

    result = scan("settings.py", cwd=tmp_path)

    assert result.exit_code == 1
    assert result.stdout == f"settings.py:3: {hint(value)}\n"
    assert value not in result.output
    assert "1 TemplateTo API key value(s) found" in result.stderr


def test_a_file_named_after_a_value_it_holds_is_reported_without_the_value(
    tmp_path: Path,
) -> None:
    value = keys.generate()
    (tmp_path / f"{value}.env").write_text(f"KEY={value}\n")

    result = scan(".", cwd=tmp_path)

    assert result.exit_code == 1
    assert value not in result.output
    assert result.stdout == f"./tt_live_[redacted].env:1: {hint(value)}\n"


def test_a_directory_is_walked_and_each_key_reported_in_order(tmp_path: Path) -> None:
    first, second, third = keys.generate(), keys.generate(), keys.generate()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep.env").write_text(f"A={first}\nB={second} C={third}\n")
    (tmp_path / "a.md").write_text(f"curl -H 'X-Api-Key: {first}'\n")

    result = scan(tmp_path)

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path}/a.md:1: {hint(first)}",
        f"{tmp_path}/b/deep.env:1: {hint(first)}",
        f"{tmp_path}/b/deep.env:2: {hint(second)}",
        f"{tmp_path}/b/deep.env:2: {hint(third)}",
    ]


def test_look_alikes_are_not_reported_and_a_clean_tree_exits_0(tmp_path: Path) -> None:
    value = keys.generate()
    (tmp_path / "notes.txt").write_text(
        "\n".join(
            [
                mistyped(value),  # a character changed
                value[:-1],  # truncated
                value + "x",  # part of a longer run of letters and digits
                value.replace("tt_live_", "TT_LIVE_"),  # another prefix
                "tt_live_" + "0" * 38,  # shaped like a key, with a made-up checksum
                "tt_live_…" + value[-4:],  # a hint
            ]
        )
    )

    result = scan(tmp_path)

    assert result.exit_code == 0
    assert result.stdout == ""


def test_binary_files_symbolic_links_and_git_directories_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(keys.generate())
    tree = tmp_path / "tree"
    (tree / ".git" / "objects").mkdir(parents=True)
    (tree / ".git" / "COMMIT_EDITMSG").write_text(keys.generate())
    for other in (".hg", ".svn"):
        (tree / other).mkdir()
        (tree / other / "last-message.txt").write_text(keys.generate())
    (tree / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + keys.generate().encode())
    (tree / "linked.txt").symlink_to(outside / "secret.txt")
    (tree / "linked-dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(tree / "pipe")

    assert scan(tree).exit_code == 0
    assert scan(tree / "linked.txt", tree / "linked-dir", tree / "pipe").exit_code == 0
    assert scan(outside).exit_code == 1


def test_a_named_path_that_is_not_read_is_a_warning_not_silence(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.py").write_text(f'KEY = "{keys.generate()}"\n')
    (tmp_path / "current").symlink_to(project, target_is_directory=True)
    os.mkfifo(tmp_path / "pipe")

    result = scan("current", "pipe", cwd=tmp_path)

    # Nothing outside the paths is read, but "nothing found" must not pass for "all clean".
    assert result.exit_code == 0 and result.stdout == ""
    assert "warning: current was not scanned: a symbolic link" in result.stderr
    assert "warning: pipe was not scanned: not a regular file or directory" in result.stderr


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = scan(tmp_path / "missing")

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_big_file_is_read_in_chunks_and_keys_across_chunk_ends_are_found(
    tmp_path: Path,
) -> None:
    """A value straddling the 1 MiB chunk boundary, one at the very end, and line numbers
    counted across chunks."""
    value, last = keys.generate(), keys.generate()
    lines = ["x" * 99] * 10_485  # 1,048,500 bytes: the value starts 76 bytes before 1 MiB
    big = tmp_path / "big.log"
    big.write_text("\n".join([*lines, value, *lines, last]))

    result = scan(big)

    assert result.stdout.splitlines() == [
        f"{big}:10486: {hint(value)}",
        f"{big}:20972: {hint(last)}",
    ]


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(alphabet="ab\n _=", max_size=40),
    after=st.text(alphabet="ab\n _=", max_size=40).map(lambda text: "\n" + text),
    chunk=st.integers(min_value=1, max_value=80),
)
def test_chunked_reading_finds_what_reading_whole_finds(
    before: str, after: str, chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    value = keys.generate()
    text = f"{before}{value}{after}{value}"
    path = tmp_path_factory.mktemp("chunks") / "file.txt"
    path.write_text(text)
    expected_lines = [
        text[:offset].count("\n") + 1 for offset in (len(before), len(before) + 46 + len(after))
    ]
    original = scanning.CHUNK_BYTES
    scanning.CHUNK_BYTES = chunk
    try:
        found = list(scanning.Scan().run([str(path)]))
    finally:
        scanning.CHUNK_BYTES = original

    assert [finding.line for finding in found] == expected_lines
    assert {finding.digest for finding in found} == {keys.fingerprint(value)}


def test_report_takes_the_admin_key_from_the_environment_and_no_url_may_hold_one(
    tmp_path: Path,
) -> None:
    value = keys.generate()
    runner = CliRunner()
    report = ["scan", "--report", "http://127.0.0.1:9", str(tmp_path)]
    in_url = ["scan", "--report", f"http://127.0.0.1:9/?key={value}", str(tmp_path)]

    without_key = runner.invoke(main, report, env={"TEMPLATETO_API_KEY": ""})
    key_in_url = runner.invoke(main, in_url, env={"TEMPLATETO_API_KEY": value})

    assert without_key.exit_code == 2 and "TEMPLATETO_API_KEY" in without_key.output
    assert key_in_url.exit_code == 2 and "a URL is no place for a key" in key_in_url.output
    assert value not in key_in_url.output


def test_a_percent_encoded_key_in_the_report_url_is_refused_too(tmp_path: Path) -> None:
    value = keys.generate()
    encoded = value.replace("_", "%5F")
    in_url = ["scan", "--report", f"http://127.0.0.1:9/?key={encoded}", str(tmp_path)]

    key_in_url = CliRunner().invoke(main, in_url, env={"TEMPLATETO_API_KEY": value})

    assert key_in_url.exit_code == 2 and "a URL is no place for a key" in key_in_url.output
