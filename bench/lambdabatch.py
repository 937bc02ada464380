"""The Lambda handler over the real test stack, AWS under moto: time and CPU per endpoint of a batch.

    python3 -m bench.lambdabatch [--sizes 1,5,25] [--runs 3] [--delay-ms 0]

Starts the test stack (tests/stack: a private dockerd with the demo containers, two registries, a
token server), puts the daemon's TLS material and the registry credentials in (moto's) Secrets
Manager, then invokes ``handler.aws.lambda_function.invoke`` as Step Functions does: a batch event
``{"Items": [...], "BatchInput": {"correlation_id": ...}}`` of K items, each the stack's daemon under
a name of its own (K listings; the registry lookups shared). K = 1 is also run as a plain
``{"endpoint": ...}`` event. Each invocation gets a fresh Runtime (a cold container's state, imports
aside) and a DynamoDB token table. Per K it prints the median wall and process CPU seconds of an
invocation, per endpoint, and the registry requests of the report.

It measures on this machine: Lambda's CPU share is proportional to memory (1,769 MB is one vCPU),
so docs/lambda.md scales the CPU figures to the function's memory, and a daemon at a distance adds
its round trips to each listing (docs/performance.md).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.lambdabatch")
    parser.add_argument("--sizes", default="1,5,25", help="batch sizes K, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(k) for k in args.sizes.split(",")]
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    from moto import mock_aws

    from tests.stack import Stack, build_demo_fleet

    with tempfile.TemporaryDirectory(prefix="spyglass-lambdabatch-") as workdir, \
            Stack().start(Path(workdir)) as stack:
        build_demo_fleet(stack)
        with mock_aws():
            from tests.aws.conftest import _world

            world = _world()
            rows = [measure(stack, world, k, args.runs) for k in sizes]
    print(f"{'K':>4} {'event':>8} {'wall s':>8} {'CPU s':>7} {'wall/endpoint s':>16} {'CPU/endpoint s':>15} "
          f"{'registry requests':>18}")
    for row in rows:
        print(f"{row['k']:>4} {row['event']:>8} {row['wall']:>8.3f} {row['cpu']:>7.3f} "
              f"{row['wall'] / row['k']:>16.3f} {row['cpu'] / row['k']:>15.3f} {json.dumps(row['requests']):>18}")
    return 0


def measure(stack, world, k: int, runs: int) -> dict:
    from handler.aws.clients import AwsClients
    from handler.aws.lambda_function import Runtime, invoke
    from tests.aws.conftest import FakeContext

    folder = Path(stack.daemon.cert_dir)
    tls = {part: (folder / f"{part}.pem").read_text() for part in ("ca", "cert", "key")}
    secrets = world.client("secretsmanager")
    secrets.create_secret(Name=f"spyglass/bench-{k}/tls", SecretString=json.dumps(tls))
    secrets.create_secret(Name=f"spyglass/bench-{k}/registries", SecretString=Path(stack.docker_config).read_text())
    env = {"SPYGLASS_TLS_SECRET": f"spyglass/bench-{k}/tls",
           "SPYGLASS_REGISTRY_AUTH_SECRET": f"spyglass/bench-{k}/registries",
           "SPYGLASS_REGISTRY_CA": str(stack.registry_ca), "SPYGLASS_INSECURE_REGISTRIES": stack.plain.address,
           "SNS_TOPIC_ARN": world.topic_arn, "REPORT_BUCKET": world.bucket, "AWS_REGION": "us-east-1",
           "TOKEN_CACHE": f"dynamodb:{world.table}", "SPYGLASS_LOG_LEVEL": "warning"}
    items = [{"host": stack.daemon.host, "name": f"bench-{i:03d}"} for i in range(k)]
    event_kind = "endpoint" if k == 1 else "batch"
    walls, cpus, result = [], [], None
    for run in range(runs):
        event = ({"endpoint": items[0], "correlation_id": f"bench-{k}-{run}"} if k == 1 else
                 {"Items": items, "BatchInput": {"correlation_id": f"bench-{k}-{run}"}})
        runtime = Runtime(clients=AwsClients(region="us-east-1"))
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF lines
            result = invoke(event, FakeContext(remaining_seconds=300), env=env, runtime=runtime,
                            log_stream=io.StringIO())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    if isinstance(result.get("report_location"), dict):  # a batch report too large for a state: in S3
        location = result["report_location"]
        result = json.loads(world.client("s3").get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read())
    report = result if "registries" in result else json.loads(world.receive(world.raw_queue)[-1]["Body"])
    requests = {}
    for registry in report.get("registries", []) or []:
        for kind, count in registry.get("requests", {}).items():
            requests[kind] = requests.get(kind, 0) + count
    return {"k": k, "event": event_kind, "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "requests": requests}


if __name__ == "__main__":
    sys.exit(main())
