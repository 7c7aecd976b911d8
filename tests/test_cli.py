"""The `affect` command line as a user meets it."""
import json

import typer
from typer.testing import CliRunner

from affect_sdk.cli import app, friendly
from affect_sdk.errors import InputError

runner = CliRunner()


def test_help_lists_the_command_groups():
    out = runner.invoke(app, ["--help"]).output
    for group in ("live", "predict", "eval", "train", "export", "doctor"):
        assert group in out


def test_doctor_runs_headless_and_reports_facts():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output.strip().splitlines()[-1])
    assert isinstance(info["cameras"], list)  # none here is a fact, not a crash
    assert info["versions"]["torch"]
    assert all(m["state"] == "ok" for m in info["models"])


def test_affect_errors_become_one_red_line_and_exit_2():
    mini = typer.Typer()

    @mini.command()
    @friendly
    def broken() -> None:
        raise InputError("The file x.png is not an image.")

    @mini.command()
    def other() -> None:
        pass

    result = runner.invoke(mini, ["broken"])
    assert result.exit_code == 2
    assert "The file x.png is not an image." in result.output
    assert "Traceback" not in result.output


def test_brackets_in_an_error_print_as_they_are():
    # console markup would drop "[default: 3]" and fail outright on a closing-tag-like "[/tmp/x]"
    message = "Bad --steps [default: 3] for [/tmp/x] and [b]bold[/b]."
    mini = typer.Typer()

    @mini.command()
    @friendly
    def broken() -> None:
        raise InputError(message)

    @mini.command()
    def other() -> None:
        pass

    result = runner.invoke(mini, ["broken"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_help_shows_bracketed_defaults_in_full():
    result = runner.invoke(app, ["export", "onnx", "--help"], env={"COLUMNS": "200"})
    assert "(default: ../shared/data/ferplus beside the checkout)" in result.output
