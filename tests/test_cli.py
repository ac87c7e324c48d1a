from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_help_lists_global_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--config" in result.output



def test_output_piped_into_a_reader_that_stops_early_is_no_error(tmp_path):
    import subprocess
    import sys

    quotes = tmp_path / "quotes.csv"
    quotes.write_text("id,text\n" + "".join(f"q{i},Sharing data saved us money in year {i}.\n" for i in range(100)))
    piped = subprocess.run(f"{sys.executable} -m pipeline tag --json --file {quotes} | head -n 1", shell=True,
                           capture_output=True, text=True, executable="/bin/bash", timeout=300)
    assert piped.stdout.count("\n") == 1
    assert "error" not in piped.stderr and "Traceback" not in piped.stderr
