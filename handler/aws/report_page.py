"""The HTML report in the report bucket, and a presigned link to it for the SNS and notify messages.

    PageStore(s3, bucket, expires_in).put(key, page) -> PageLink | None

The page is stored beside the JSON report (the same key, ending .html instead of .json) as
text/html, and linked by a presigned GET that lasts `expires_in` seconds
(SPYGLASS_REPORT_LINK_EXPIRY, at most S3's 7 days). A link signed with temporary credentials
(the function's role) stops working when they expire, whichever comes first; docs/lambda.md
says so. The link is a capability, so it goes into the messages and never into the log,
which names the s3:// location only. A failed upload or signature costs the link, not the
message: a warning, and None.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from handler.aws.clients import aws_errors, error_code

log = logging.getLogger("spyglass.aws")

CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class PageLink:
    bucket: str
    key: str
    url: str  # the presigned GET
    expires_at: float  # epoch seconds

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def expires_iso(self) -> str:
        return datetime.fromtimestamp(self.expires_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "key": self.key, "uri": self.uri, "url": self.url,
                "expires_at": self.expires_iso}

    def line(self) -> str:
        """The sentence a message carries: where the page is and until when the link works."""
        return f"Report page (link valid until {self.expires_iso} at the latest): {self.url}"


def with_link(text: str, page: PageLink | None) -> str:
    """The text with the page's link as its second line, where a reader looks after the counts."""
    if page is None:
        return text
    first, _, rest = text.partition("\n")
    return f"{first}\n{page.line()}\n{rest}"


def page_key(json_key: str) -> str:
    """The page's key beside the JSON report's."""
    return (json_key[: -len(".json")] if json_key.endswith(".json") else json_key) + ".html"


class PageStore:
    def __init__(self, client, bucket: str, *, expires_in: int, clock: Callable[[], float] = time.time) -> None:
        self._client, self._bucket, self._expires_in, self._clock = client, bucket, expires_in, clock

    def put_beside(self, json_key: str, page: str) -> PageLink | None:
        """put() under the JSON report's key, .html for .json (page_key)."""
        return self.put(page_key(json_key), page)

    def put(self, key: str, page: str) -> PageLink | None:
        where = f"s3://{self._bucket}/{key}"
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=page.encode("utf-8"),
                                    ContentType=CONTENT_TYPE, ContentDisposition="inline",
                                    CacheControl="private, no-store")
            signed_at = self._clock()
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key, "ResponseContentType": CONTENT_TYPE},
                ExpiresIn=self._expires_in)
        except aws_errors() as exc:
            log.warning("store the HTML report at %s failed (%s); the messages go without its link",
                        where, error_code(exc))
            return None
        log.info("HTML report stored", extra={"report_page": where, "bytes": len(page.encode("utf-8")),
                                              "link_expires_in_s": self._expires_in})
        return PageLink(self._bucket, key, url, signed_at + self._expires_in)
