"""`--insecure-registry` through the CLI: a value dockerd would refuse is exit 2 before any connection."""
import io
import time

import pytest

from handler.cli import EXIT_CONFIG, main


def run(argv, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    # The daemon address is unroutable on purpose: the value must be refused before any connection.
    code = main(["scan", "-H", "tcp://192.0.2.1:2376", *argv], env={}, stdout=out, stderr=err, home=tmp_path)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("value, why", [
    ("http://bad:port", "invalid registry port"),
    ("svn://reg.example.com", "only http:// or https://"),
    ("reg.example.com/team", "without a path"),
    ("10.0.0.0/40", "prefix length too long"),
])
def test_an_invalid_insecure_registry_exits_2_and_says_what_is_wrong(tmp_path, value, why):
    started = time.monotonic()
    code, out, err = run(["--insecure-registry", value], tmp_path)
    assert time.monotonic() - started < 1.0
    assert code == EXIT_CONFIG and out == ""
    assert f'insecure registry "{value}"' in err and why in err and "Traceback" not in err


def test_an_invalid_value_among_good_ones_is_still_refused(tmp_path):
    code, _, err = run(["--insecure-registry", "https://reg.example.com:5000", "--insecure-registry", "[::1",
                        "--insecure-registry", "10.0.0.0/8"], tmp_path)
    assert code == EXIT_CONFIG and 'insecure registry "[::1"' in err
