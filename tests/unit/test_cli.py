"""The CLI's shape: a noun, then a verb (`executions list`, `dlq redrive ingest`), and exit code 2
for a command asked wrongly, before it touches any cloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cli import build_parser, dlq, executions, main

# An endpoint where nothing listens: a command that got as far as the cloud would fail with 1.
NOWHERE = ["--endpoint-url", "http://127.0.0.1:9"]


def test_executions_list_and_show_are_verbs_of_executions() -> None:
    # Given the parser
    parser = build_parser()
    # When `executions list` with every filter, and `executions show NAME`, are parsed
    listing = parser.parse_args(
        ["executions", "list", "--status", "FAILED", "--since", "24h", "--dataset", "sales",
         "--json"]
    )  # fmt: skip
    shown = parser.parse_args(["executions", "show", "sales-a-0123456789abcdef"])
    # Then each runs its own command with the options given
    assert (listing.func, listing.status, listing.since, listing.dataset, listing.json) == (
        executions.cmd_list,
        "FAILED",
        "24h",
        "sales",
        True,
    )
    assert (shown.func, shown.execution, shown.json) == (
        executions.cmd_show,
        "sales-a-0123456789abcdef",
        False,
    )


def test_dlq_list_and_redrive_are_verbs_of_dlq() -> None:
    # Given the parser
    parser = build_parser()
    # When the dead-letter commands are parsed
    default = parser.parse_args(["dlq", "list"])
    ingest = parser.parse_args(["dlq", "list", "ingest", "--peek"])
    redrive = parser.parse_args(["dlq", "redrive", "failures", "--dry-run", "--wait", "5"])
    # Then `list` reads the failure DLQ unless told otherwise, and `redrive` names its queue
    assert (default.func, default.queue, default.peek) == (dlq.cmd_list, "failures", False)
    assert (ingest.func, ingest.queue, ingest.peek) == (dlq.cmd_list, "ingest", True)
    assert (redrive.func, redrive.queue, redrive.dry_run, redrive.wait) == (
        dlq.cmd_redrive,
        "failures",
        True,
        5.0,
    )


@pytest.mark.parametrize(
    ("argv", "last_line"),
    [
        (["execution", "show", "x"], "sluice: error: argument command: invalid choice: "
         "'execution' (choose from 'run', 'query', 'ddl', 'up', 'upload', 'executions', "
         "'rerun', 'dlq', 'status')"),
        (["executions", "--since", "24h"], "sluice executions: error: argument action: "
         "invalid choice: '24h' (choose from 'list', 'show')"),
        (["executions"], "sluice executions: error: the following arguments are required: "
         "action"),
        (["dlq", "failures"], "sluice dlq: error: argument action: invalid choice: 'failures' "
         "(choose from 'list', 'redrive')"),
        (["dlq", "redrive", *NOWHERE], "sluice dlq redrive: error: the following arguments "
         "are required: queue"),
        (["dlq", "list", "--dry-run"], "sluice: error: unrecognized arguments: --dry-run"),
        (["executions", "list", "--since", "3x", *NOWHERE], "sluice executions list: error: "
         "argument --since: '3x': write a number and m, h or d (30m, 24h, 7d)"),
        (["rerun", "--failed", "--since", "week", *NOWHERE], "sluice rerun: error: argument "
         "--since: 'week': write a number and m, h or d (30m, 24h, 7d)"),
        (["rerun", *NOWHERE], "sluice: name executions to rerun, or pass --failed"),
        (["ddl", "nope"], "sluice: no contract for dataset 'nope' in "),
    ],
)  # fmt: skip
def test_a_command_asked_wrongly_exits_2_with_one_line(
    argv: list[str], last_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the CLI is asked wrongly
    code = main(argv)
    # Then it exits 2, says why on stderr's last line, and prints no result
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines()[-1].startswith(last_line)
    assert captured.out == ""


def test_upload_of_a_missing_file_or_a_bad_dataset_exits_2_before_the_cloud(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file that exists and one that does not
    there = tmp_path / "there.csv"
    there.write_text("id\n1\n", encoding="utf-8")
    missing = tmp_path / "missing.csv"
    # When they are uploaded together, or the one there under a name that is not a dataset
    first = main(["upload", str(there), str(missing), *NOWHERE])
    first_err = capsys.readouterr().err
    second = main(["upload", str(there), "--dataset", "Not-A-Name", *NOWHERE])
    second_err = capsys.readouterr().err
    # Then both exit 2 with one line, and neither reached the endpoint (that would be 1)
    assert (first, first_err) == (2, f"sluice: no such file: {missing}\n")
    assert (second, second_err) == (
        2,
        "sluice: 'Not-A-Name' is not a dataset name (lower-case letters, digits, _)\n",
    )


def test_run_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When `sluice run` is given a file that is not there
    code = main(["run", str(tmp_path / "gone.csv"), "--lake", str(tmp_path / "lake")])
    # Then it exits 2 with one line, and starts no local cloud (no lake folder)
    assert (code, capsys.readouterr().err) == (
        2,
        f"sluice: no such file: {tmp_path / 'gone.csv'}\n",
    )
    assert not (tmp_path / "lake").exists()


def test_a_command_that_fails_at_the_cloud_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an endpoint where nothing listens (and no retries to wait through)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # When a well-formed command is sent there
    code = main(["executions", "list", *NOWHERE])
    # Then it exits 1 with one line naming the endpoint
    assert (code, capsys.readouterr().err) == (
        1,
        "sluice: cannot reach http://127.0.0.1:9/: is it running?\n",
    )
