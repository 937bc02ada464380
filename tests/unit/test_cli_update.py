"""`spyglass update`'s own contract before any daemon call: refusal without --yes off a terminal,
the update options only on the update command."""
import io

import pytest

from handler.cli import EXIT_CONFIG, build_parser, main
from tests.stack.listener import CountingListener


def test_a_run_that_cannot_ask_refuses_without_yes_and_connects_nowhere(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with CountingListener() as daemon:
        code = main(["update", "-H", daemon.address], env={}, stdout=out, stderr=err, stdin=io.StringIO("y\n"),
                    home=tmp_path)
        assert daemon.connections() == 0
    assert code == EXIT_CONFIG and out.getvalue() == ""
    assert "--yes" in err.getvalue() and "Traceback" not in err.getvalue()


def test_update_takes_every_scan_option_and_its_own(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["update", "--help"])
    text = capsys.readouterr().out
    for option in ("--registry-ca", "--label-enable", "--scope", "--dry-run", "--yes", "--rolling",
                   "--health-timeout", "--stop-timeout", "--cleanup", "--timeout"):
        assert option in text


def test_scan_does_not_take_the_update_options():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["scan", "--rolling"])


@pytest.mark.parametrize("argv", [["--health-timeout", "0"], ["--stop-timeout", "-1"]])
def test_bad_update_values_exit_2(tmp_path, argv):
    err = io.StringIO()
    assert main(["update", "--yes", *argv], env={}, stdout=io.StringIO(), stderr=err, home=tmp_path) == EXIT_CONFIG
    assert argv[0] in err.getvalue()


def test_an_update_of_a_fleet_is_refused_before_any_connection(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with CountingListener() as first, CountingListener() as second:
        code = main(["update", "--yes", "-H", first.address, "-H", second.address], env={}, stdout=out,
                    stderr=err, home=tmp_path)
        assert first.connections() == second.connections() == 0
    assert code == EXIT_CONFIG and "one endpoint at a time" in err.getvalue() and "Traceback" not in err.getvalue()
