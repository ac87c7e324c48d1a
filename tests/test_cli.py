from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_help_lists_global_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--config" in result.output


def test_missing_config_file_is_a_usage_error_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "--help"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
