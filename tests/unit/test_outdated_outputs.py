"""What the entry points make of `outdated`: the exit verdict, the Action's outputs and notices, SNS attributes."""
from __future__ import annotations

import io

from engine.report import ContainerResult, Report
from engine.versions import Newer
from handler.action import Commands, annotate, output_values
from handler.outcome import found

DIGEST = "sha256:" + "a" * 64


def report(*newer: Newer | None) -> Report:
    containers = tuple(ContainerResult(f"id{i}", f"c{i}", f"nginx:1.25.{i}", "fresh", local_digests=(DIGEST,),
                                       remote_digest=DIGEST, newer=n) for i, n in enumerate(newer))
    return Report.single("tcp://docker.example:2376", 0.0, 1.0, containers)


def test_fail_on_outdated_is_its_own_verdict_after_stale_and_errors():
    summary = report(Newer("1.25.5"), Newer(), None).summary
    assert summary["outdated"] == 1
    assert found(summary, fail_on_stale=True, fail_on_error=True) is None
    assert found(summary, fail_on_stale=False, fail_on_error=False, fail_on_outdated=True) == "outdated"
    assert found(report(Newer()).summary, fail_on_stale=False, fail_on_error=False, fail_on_outdated=True) is None


def test_the_action_outputs_the_count_and_one_notice_per_outdated_container():
    scanned = report(Newer("1.25.5", "1.27.2"), Newer())
    assert output_values(scanned, "/tmp/r.json")["outdated-count"] == "1"
    out = io.StringIO()
    annotate(Commands(out), scanned)
    assert out.getvalue() == ("::notice title=Newer version for c0::tcp://docker.example:2376: container c0 runs "
                              "nginx:1.25.0; newer: 1.27.2 (minor)\n")


def test_sns_attributes_carry_the_outdated_count():
    from handler.aws.sns import attributes
    values = attributes(report(Newer(major="2.0.0")), "scan-1", None, False)
    assert values["outdated_count"] == {"DataType": "Number", "StringValue": "1"}
    assert len(values) <= 10
