"""Report.from_dict: a schema_version 2 document back into the report's dataclasses, and a clear error
for a document of another version or shape. (Documents from the real stack are read back in
tests/integration/test_fleet.py and test_update.py.)"""
import copy
import json

import jsonschema
import pytest

from engine.errors import ReportDocumentError
from engine.report import Action, Report, render_json, schema
from engine.versions import Newer

from tests.reportdoc import assert_reads_back
from tests.unit.test_report import fleet, sample
from tests.unit.test_report_action import report as update_report, stale


def document(report: Report) -> dict:
    return json.loads(render_json(report))


def test_a_single_endpoints_report_reads_back_unchanged():
    assert_reads_back(document(sample()))


def test_a_fleet_report_with_an_unreachable_endpoint_reads_back_unchanged():
    doc = document(fleet())
    assert_reads_back(doc)
    down = Report.from_dict(doc).unlisted
    assert [(e.display_name, e.status, e.reason) for e in down] == [("db-3", "unreachable", "connection-refused")]


def test_an_update_report_with_actions_and_newer_versions_reads_back_unchanged():
    from dataclasses import replace

    moved = Action("rolled-back", "unhealthy", "the health check failed", "sha256:" + "a" * 64,
                   "sha256:" + "b" * 64, 21480)
    doc = document(update_report(stale("web", moved), replace(stale("api"), newer=Newer(minor="1.9.0")),
                                 stale("db", Action("planned"))))
    assert_reads_back(doc)
    by_name = {c.name: c for c in Report.from_dict(doc).containers}
    assert by_name["web"].action == moved and by_name["api"].outdated and by_name["api"].action is None


@pytest.mark.parametrize("started, finished", [
    (1_796_076_000.1234, 1_796_076_000.5678),   # the duration rounds up past the cut milliseconds
    (1_796_076_000.1236, 1_796_076_000.5671),   # and down
    (1_796_076_000.0, 1_796_076_061.9999),
])
def test_times_cut_to_the_millisecond_keep_the_written_duration(started, finished):
    from dataclasses import replace

    doc = document(replace(sample(), started_at=started, finished_at=finished))
    assert_reads_back(doc)


def test_a_merged_fleet_document_reads_back_without_its_run():
    from handler.aws.fleetreport import merge
    from handler.aws.resultwriter import BatchOutcome

    batches = [BatchOutcome(name="b1", status="SUCCEEDED", items=(), report=document(fleet(3))),
               BatchOutcome(name="b2", status="FAILED", items=({"host": "tcp://10.0.1.1:2376", "name": "x"},),
                            report=None, error="Lambda.Unknown", cause="")]
    doc = merge("prod", batches, started_at=1_796_076_000.0, finished_at=1_796_076_060.5, run={"id": "exec-1"})
    jsonschema.validate(doc, schema())
    assert_reads_back(doc, extra=("run",))
    assert Report.from_dict(doc).endpoints[-1].reason == "batch-failed"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=1), "schema_version 1, expected 2"),
    (lambda d: d.pop("schema_version"), "schema_version None, expected 2"),
    (lambda d: d.update(endpoints={}), "endpoints: expected a list"),
    (lambda d: d.update(started_at="yesterday"), "started_at: 'yesterday' is no ISO 8601 time"),
    (lambda d: d["endpoints"][0].update(status="sunny"), "endpoints[0].status: 'sunny' is none of"),
    (lambda d: d["endpoints"][0]["containers"][1].pop("image"), "endpoints[0].containers[1].image: expected a"),
    (lambda d: d["endpoints"][0]["containers"][0].update(local_digests=[7]), "containers[0].local_digests"),
    (lambda d: d["endpoints"][0]["containers"][0].update(newer={"minor": 2}), "containers[0].newer.minor"),
    (lambda d: d["endpoints"][0]["containers"][0].update(action={"action": "exploded"}), "action.action"),
    (lambda d: d["registries"][0]["requests"].update(head="3"), "registries[0].requests: expected counts"),
    (lambda d: d["endpoints"].append(7), "endpoints[1]: expected an object"),
])
def test_a_document_of_another_version_or_shape_is_a_clear_error(change, message):
    doc = copy.deepcopy(document(sample()))
    change(doc)
    with pytest.raises(ReportDocumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Report.from_dict(doc)


def test_what_is_not_a_json_object_is_a_clear_error():
    with pytest.raises(ReportDocumentError, match="expected a JSON object"):
        Report.from_dict([document(sample())])
