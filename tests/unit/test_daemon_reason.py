"""The daemon's one-line causes are chosen by exception type along the cause chain, never by message text."""
import http.client
import socket
import ssl

import pytest
import requests
import urllib3.exceptions
from docker.errors import APIError, DockerException

from engine.daemon import _listing_error, _reason
from engine.errors import causes


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def verify_failed() -> ssl.SSLCertVerificationError:
    return ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")


def alert(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, "alert")
    error.reason = reason
    return error


def through_requests(cause: BaseException) -> BaseException:
    """How requests hands over a failed connection: its error around urllib3's MaxRetryError."""
    retries = urllib3.exceptions.MaxRetryError(None, "/version", reason=cause)
    return chained(DockerException("Error while fetching server API version: ..."),
                   requests.exceptions.ConnectionError(retries))


def api_error(status: int, explanation: str | None) -> APIError:
    response = requests.Response()
    response.status_code, response.url, response.reason = status, "https://daemon/v1.41/images/x/json", "Not Found"
    return APIError("404 Client Error", response=response, explanation=explanation)


@pytest.mark.parametrize("error, reason", [
    (through_requests(chained(urllib3.exceptions.SSLError("wrapped"), verify_failed())),
     "TLS certificate verification failed"),
    (through_requests(urllib3.exceptions.SSLError(alert("TLSV13_ALERT_CERTIFICATE_REQUIRED"))),
     "the daemon requires a client certificate"),
    (through_requests(alert("SSLV3_ALERT_BAD_CERTIFICATE")), "the daemon rejected the client certificate"),
    (through_requests(alert("TLSV1_ALERT_UNKNOWN_CA")), "the daemon does not trust the client certificate's CA"),
    (through_requests(chained(urllib3.exceptions.NewConnectionError(None, "Failed to establish"),
                              ConnectionRefusedError(111, "refused"))), "connection refused"),
    (through_requests(urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))),
     "connection reset"),
    (through_requests(urllib3.exceptions.ProtocolError("aborted", http.client.RemoteDisconnected("closed"))),
     "the daemon closed the connection"),
    (requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out."), "timed out"),
    (requests.exceptions.ConnectionError(chained(urllib3.exceptions.ReadTimeoutError(None, "/x", "slow"),
                                                 TimeoutError("The read operation timed out"))), "timed out"),
    (through_requests(FileNotFoundError(2, "No such file or directory")), "no such socket"),
    (through_requests(socket.gaierror(-2, "Name or service not known")), "host not found"),
    (api_error(404, "No such image: sha256:abc"), "No such image: sha256:abc"),
    (api_error(500, None), "500"),
], ids=lambda value: value if isinstance(value, str) else type(value).__name__)
def test_a_known_cause_anywhere_in_the_chain_names_the_reason(error, reason):
    assert _reason(error) == reason


@pytest.mark.parametrize("text", ["Read timed out", "Connection refused", "CERTIFICATE_VERIFY_FAILED",
                                  "No such file or directory"])
def test_words_in_a_message_of_an_unknown_type_are_not_read_as_that_cause(text):
    assert _reason(RuntimeError(f"{text} somewhere in a message")) == f"{text} somewhere in a message"


def test_an_unknown_cause_gives_its_first_line_cut_short():
    assert _reason(ValueError("first line\nsecond line")) == "first line"
    assert _reason(ValueError("x" * 500)) == "x" * 200
    assert _reason(ValueError()) == "ValueError"


def test_causes_walks_each_link_once_even_in_a_loop():
    inner, outer = ValueError("inner"), KeyError("outer")
    outer.__cause__, inner.__context__ = inner, outer
    assert list(causes(outer)) == [outer, inner]


@pytest.mark.parametrize("error, slug, unreachable", [
    (through_requests(chained(urllib3.exceptions.SSLError("wrapped"), verify_failed())), "tls-handshake", True),
    (through_requests(alert("TLSV1_ALERT_UNKNOWN_CA")), "tls-handshake", True),
    (through_requests(chained(urllib3.exceptions.NewConnectionError(None, "Failed to establish"),
                              ConnectionRefusedError(111, "refused"))), "connection-refused", True),
    (through_requests(urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))),
     "connection-reset", True),
    (through_requests(urllib3.exceptions.ProtocolError("aborted", http.client.RemoteDisconnected("closed"))),
     "connection-closed", True),
    (requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out."), "timeout", True),
    (through_requests(socket.gaierror(-2, "Name or service not known")), "host-not-found", True),
    (through_requests(FileNotFoundError(2, "No such file or directory")), "no-such-socket", True),
    (api_error(500, None), "daemon-refused", False),
    (RuntimeError("Connection refused, says the text"), "daemon-error", False),
], ids=lambda value: value if isinstance(value, (str, bool)) else type(value).__name__)
def test_an_endpoint_not_listed_gets_a_slug_by_type_and_unreachable_or_error(error, slug, unreachable):
    failure = _listing_error("list containers on tcp://h:2376", error)
    assert (failure.reason, failure.unreachable) == (slug, unreachable)
    assert str(failure).startswith("list containers on tcp://h:2376: ")
