"""handler.aws.report_page: the page in the bucket, its presigned link opens it, a failure costs only the link.

moto runs as a real HTTP server on loopback here, so the presigned URL is fetched the way a
person's browser would fetch it (moto does not check signatures: that the link lasts what the
setting says is read from the URL itself).
"""
from __future__ import annotations

import socket
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from engine.report_html import render_html
from handler.aws.report_page import PageStore, page_key
from tests.html.documents import fleet_document

BUCKET = "spyglass-pages"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=BUCKET)
    return client


def fetch(url: str) -> tuple[int, str, bytes]:
    assert url.startswith("http://127.0.0.1:")  # loopback only
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.read()


def test_the_page_is_stored_beside_the_json_report_and_its_link_opens_it(s3):
    page = render_html(fleet_document(3, 5))
    link = PageStore(s3, BUCKET, expires_in=3600, clock=lambda: 1_800_000_000.0).put(
        page_key("reports/fleet/2026/11/30/220000-scan-1.json"), page)
    assert link.key == "reports/fleet/2026/11/30/220000-scan-1.html" and link.uri.startswith(f"s3://{BUCKET}/")
    assert "X-Amz-Expires=3600" in link.url and link.expires_iso == "2027-01-15T09:00:00Z"
    status, content_type, body = fetch(link.url)
    assert status == 200 and body.decode() == page
    assert content_type.startswith("text/html")


def test_a_failed_upload_costs_the_link_and_is_logged_without_it(s3, caplog):
    link = PageStore(s3, "no-such-bucket", expires_in=600).put("reports/x.html", "<!DOCTYPE html>")
    assert link is None
    assert "s3://no-such-bucket/reports/x.html" in caplog.text and "NoSuchBucket" in caplog.text


def test_the_log_names_the_location_never_the_link(s3, caplog):
    caplog.set_level("INFO", logger="spyglass.aws")
    link = PageStore(s3, BUCKET, expires_in=600).put("reports/y.html", "<!DOCTYPE html>")
    assert link.uri in str([r.__dict__ for r in caplog.records])
    assert "Signature" not in caplog.text and link.url not in str([r.__dict__ for r in caplog.records])


@pytest.mark.parametrize("key, expected", [("a/b.json", "a/b.html"), ("a/b", "a/b.html")])
def test_page_key(key, expected):
    assert page_key(key) == expected
