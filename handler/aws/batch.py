"""An invocation over many endpoints: the fleet list from S3 in, a batch's output to Step Functions out.

    fleet_endpoints(location)   an event's {"fleet": {"bucket", "key"}}: the JSON list read from S3
                                and checked item by item as an event's "endpoints" would be
    batch_output(doc)           what a Step Functions batch returns: its report (schema_version 2),
                                or, when that is larger than a state may carry (256 KiB), the report
                                stored in S3 and {"schema_version", "status", "summary",
                                "report_location": {"bucket", "key"}} in its place; the aggregation
                                step reads it from there (handler/aws/fleetreport.py)
"""
from __future__ import annotations

import json
import logging
import re

from engine.errors import ConfigurationError
from handler.aws.clients import aws_errors, aws_failure, error_code
from handler.aws.settings import EndpointSpec, Location, InvalidEventError, endpoints_from_list

log = logging.getLogger("spyglass.aws")

STATE_OUTPUT_BYTES = 256 * 1024  # Step Functions: a state's input or output
STATE_HEADROOM = 8 * 1024  # lambda:invoke wraps the payload (Payload, StatusCode, headers...)


def fleet_endpoints(location: Location, default: EndpointSpec, *, s3) -> tuple[EndpointSpec, ...]:
    """The endpoints of the fleet list at location, each over default; one error names every bad item."""
    where = f"s3://{location.bucket}/{location.key}"
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except aws_errors() as exc:
        raise aws_failure(f"read the fleet list {where}", exc) from None
    try:
        items = json.loads(body)
    except ValueError:
        raise ConfigurationError(f"fleet list {where}: not JSON") from None
    problems: list[str] = []
    specs = endpoints_from_list(items, default, problems, where="fleet")
    if problems:
        raise InvalidEventError(f"invalid fleet list {where}, nothing scanned: " + "; ".join(problems))
    return specs


def batch_output(doc: dict, *, s3, bucket: str, prefix: str, run_id: str, request_id: str) -> dict:
    """The batch's report, or a pointer to it in S3 when it is too large for the state's output."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) <= STATE_OUTPUT_BYTES - STATE_HEADROOM:
        return doc
    if not bucket:
        raise ConfigurationError(f"the batch report is {len(text.encode())} bytes, more than a Step Functions "
                                 "state takes, and no REPORT_BUCKET is set to hold it; use smaller batches")
    key = f"{prefix}batches/{_safe(run_id)}/{_safe(request_id)}.json"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
    except aws_errors() as exc:
        log.error("store the batch report in s3://%s/%s failed (%s)", bucket, key, error_code(exc))
        raise aws_failure(f"store the batch report in s3://{bucket}/{key}", exc) from None
    log.info("batch report stored in S3: too large for the state's output",
             extra={"report_location": f"s3://{bucket}/{key}", "bytes": len(text.encode())})
    return {"schema_version": doc.get("schema_version", 2), "status": doc.get("status"),
            "summary": doc.get("summary"), "report_location": {"bucket": bucket, "key": key}}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "_"
