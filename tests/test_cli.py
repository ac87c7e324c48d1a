from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_help_lists_global_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--config" in result.output

