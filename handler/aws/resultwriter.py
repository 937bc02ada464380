"""What a Distributed Map's ResultWriter leaves in S3, read back as batch outcomes.

With ``ResultWriter`` (no ``WriterConfig``: transformation NONE, JSON), the Map state's output is

    {"MapRunArn": "...", "ResultWriterDetails": {"Bucket": B, "Key": "<prefix>/<map run id>/manifest.json"}}

and the manifest names the result files, by the status of the child executions they hold:

    {"DestinationBucket": B, "MapRunArn": "...",
     "ResultFiles": {"SUCCEEDED": [{"Key": "<prefix>/<id>/SUCCEEDED_0.json", "Size": 1234}, ...],
                     "FAILED": [...], "PENDING": [...]}}

Each result file is a JSON array with one object per child execution: ``ExecutionArn``, ``Name``,
``Status`` (SUCCEEDED; FAILED, TIMED_OUT or ABORTED in the FAILED files; the PENDING files hold
the executions a failed or aborted Map Run never started), ``Input`` and ``Output`` as JSON
*strings*, ``Error`` and ``Cause`` for a failure, dates and redrive fields. A file holds up to 5 GB;
past that the next index (``SUCCEEDED_1.json``) follows.

A spyglass batch's ``Input`` is ``{"Items": [endpoint, ...], "BatchInput": {...}}`` (ItemBatcher)
and its ``Output`` is the batch's report (schema_version 2) or, when that was too large for a
state's 256 KiB, ``{"report_location": {"bucket", "key"}}`` pointing at it.

When the Map state fails (its failures passed ToleratedFailurePercentage), the Catch gets no
``ResultWriterDetails``: the manifest is then found under the run's results prefix.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from engine.errors import ConfigurationError
from handler.aws.clients import aws_errors, aws_failure

log = logging.getLogger("spyglass.aws")

STATUSES = ("SUCCEEDED", "FAILED", "PENDING")


@dataclass(frozen=True)
class BatchOutcome:
    """One child execution: its endpoints (the batch's Items) and its report, or why there is none."""

    name: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING
    items: tuple = ()  # the endpoint objects the batch was given (empty when its input is unknown)
    report: dict | None = None  # the batch's schema_version 2 report
    error: str = ""  # Step Functions' Error (States.Timeout, Lambda.Unknown, ...) or ours
    cause: str = ""


@dataclass(frozen=True)
class MapRun:
    map_run_arn: str = ""
    batches: list[BatchOutcome] = field(default_factory=list)
    found: bool = True  # False: no manifest was written (the Map failed before any child ran)


class ResultReader:
    """Reads the manifest and result files through an S3 client."""

    def __init__(self, s3):
        self._s3 = s3

    def map_run(self, map_output: dict | None, *, bucket: str, prefix: str) -> MapRun:
        """The outcomes of every batch of the Map Run; map_output is the Map state's output (None after a Catch)."""
        details = (map_output or {}).get("ResultWriterDetails") or {}
        manifest_bucket, manifest_key = details.get("Bucket") or bucket, details.get("Key")
        if not manifest_key:
            manifest_key = self._find_manifest(bucket, prefix)
            if manifest_key is None:
                return MapRun(found=False)
        manifest = self._json(manifest_bucket, manifest_key)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("ResultFiles"), dict):
            raise ConfigurationError(f"s3://{manifest_bucket}/{manifest_key}: not a Map Run manifest")
        destination = manifest.get("DestinationBucket") or manifest_bucket
        batches = []
        for status in STATUSES:
            for entry in manifest["ResultFiles"].get(status) or []:
                records = self._json(destination, entry["Key"])
                records = records if isinstance(records, list) else []
                records.reverse()
                while records:  # each record's Output text goes as soon as it is parsed: a fleet's are large
                    record = records.pop()
                    if isinstance(record, dict):
                        batches.append(outcome(record, status))
        return MapRun(str(manifest.get("MapRunArn") or ""), batches)

    def offloaded(self, location: dict) -> dict:
        """A batch report the batch stored in S3 because it was too large for a state's output."""
        return self._json(location["bucket"], location["key"])

    def _find_manifest(self, bucket: str, prefix: str) -> str | None:
        """The newest manifest.json under prefix (one per Map Run attempt), or None."""
        found, token = [], None
        while True:
            request = {"Bucket": bucket, "Prefix": prefix} | ({"ContinuationToken": token} if token else {})
            try:
                page = self._s3.list_objects_v2(**request)
            except aws_errors() as exc:
                raise aws_failure(f"list s3://{bucket}/{prefix}", exc) from None
            found += [o for o in page.get("Contents", []) if o["Key"].endswith("/manifest.json")]
            token = page.get("NextContinuationToken")
            if not token:
                break
        return max(found, key=lambda o: o["LastModified"])["Key"] if found else None

    def _json(self, bucket: str, key: str):
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except aws_errors() as exc:
            raise aws_failure(f"read s3://{bucket}/{key}", exc) from None
        try:
            return json.loads(body)
        except ValueError:
            raise ConfigurationError(f"s3://{bucket}/{key}: not JSON") from None


def outcome(record: dict, listed_as: str) -> BatchOutcome:
    """One result-file record as a BatchOutcome; a SUCCEEDED record without a readable report is a failure."""
    status = str(record.get("Status") or listed_as)
    items = _items(record.get("Input"))
    name = str(record.get("Name") or record.get("ExecutionArn") or "")
    if listed_as != "SUCCEEDED":
        error = str(record.get("Error") or ("NotStarted" if listed_as == "PENDING" else status))
        return BatchOutcome(name, status, items, error=error, cause=str(record.get("Cause") or ""))
    report = _parsed(record.get("Output"))
    if not isinstance(report, dict):
        return BatchOutcome(name, status, items, error="spyglass.NoReport", cause="the batch returned no report")
    return BatchOutcome(name, status, items, report=report)


def _items(text) -> tuple:
    batch = _parsed(text)
    items = batch.get("Items") if isinstance(batch, dict) else None
    return tuple(item for item in items if isinstance(item, dict)) if isinstance(items, list) else ()


def _parsed(text):
    if isinstance(text, (dict, list)):
        return text
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
