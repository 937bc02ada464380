"""Measuring the emulated network: round-trip time and TLS version through each front.

For each server: open a connection through its front (timing the connection,
the TLS handshake and the first answer together), then send a few small
requests on the same kept-alive connection and time each. The median of
those is that server's round trip as a client sees it: twice the delay, plus
the proxy's and the server's few hundred microseconds.
"""
from __future__ import annotations

import http.client
import ssl
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

REQUESTS = 7


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str  # something the server answers at once, with a body length
    tls: ssl.SSLContext | None


@dataclass(frozen=True)
class ProbeResult:
    name: str
    first_answer: float  # connect + TLS + one request, seconds
    round_trips: tuple[float, ...]
    tls_version: str | None  # "TLSv1.3", "TLSv1.2", None for plain http

    @property
    def rtt(self) -> float:
        return statistics.median(self.round_trips)

    @property
    def tls_round_trips(self) -> int:
        return {None: 0, "TLSv1.3": 1}.get(self.tls_version, 2)

    def as_dict(self) -> dict:
        return {"rtt_ms": round(self.rtt * 1000, 3), "first_answer_ms": round(self.first_answer * 1000, 3),
                "first_answer_in_rtts": round(self.first_answer / self.rtt, 2) if self.rtt else None,
                "tls": self.tls_version, "samples_ms": [round(t * 1000, 3) for t in self.round_trips]}


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def probe(target: Target, *, requests: int = REQUESTS, timeout: float = 10.0) -> ProbeResult:
    if target.tls is not None:
        connection = http.client.HTTPSConnection("127.0.0.1", target.port, context=target.tls, timeout=timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout)
    try:
        started = time.monotonic()
        _ask(connection, target.path)
        first = time.monotonic() - started
        version = connection.sock.version() if target.tls is not None else None
        samples = []
        for _ in range(requests):
            started = time.monotonic()
            _ask(connection, target.path)
            samples.append(time.monotonic() - started)
    finally:
        connection.close()
    return ProbeResult(target.name, first, tuple(samples), version)


def _ask(connection: http.client.HTTPConnection, path: str) -> None:
    connection.request("GET", path, headers={"Connection": "keep-alive"})
    response = connection.getresponse()
    response.read()
    if response.will_close:
        raise RuntimeError(f"probe {path}: the server closed the connection; cannot time round trips on it")
