"""The round-trip floor of a scan: what any client must wait for, counted in round trips.

    daemon      1 (TCP) + TLS round trips + the listing calls, one after another
                (GET /version, GET /containers/json, GET /images/json)
    registry r  chain_r = 1 (TCP) + TLS + 1 (ping GET /v2/)
                          [+ 1 (TCP) + TLS + 1 (token GET) when /v2/ asks for a bearer token]
                          + ceil((HEADs + tags lists) on r / concurrency)
    registries  max( max_r chain_r,
                     min_r setup_r + ceil(all HEADs and tags lists / concurrency) )
                where setup_r is chain_r without its HEADs: registries are independent,
                so an ideal client walks their chains side by side, but it has only
                `concurrency` requests in flight in all
    floor       (daemon + registries) round trips x the measured round-trip time

TLS is 1 round trip for TLS 1.3 and 2 for TLS 1.2, as negotiated with each
server (the probe reads it). Not in the floor: process start-up, the servers'
own work, CPU time, and the GET an index tag costs after its HEAD (an ideal
client could GET every manifest instead of HEAD; see docs/performance.md).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LISTING_CALLS = 3  # /version, /containers/json, /images/json


@dataclass(frozen=True)
class Server:
    """How many round trips it costs to open a connection to one server."""

    tls_round_trips: int  # 0 for plain http, 1 for TLS 1.3, 2 for TLS 1.2

    @property
    def connect(self) -> int:
        return 1 + self.tls_round_trips


@dataclass(frozen=True)
class RegistryLoad:
    name: str
    server: Server
    heads: int
    token_server: Server | None  # None: the registry asks for no token
    tags: int = 0  # tags lists (one page each): requests after the setup, like the HEADs

    @property
    def requests(self) -> int:
        return self.heads + self.tags


@dataclass(frozen=True)
class Floor:
    daemon: int  # round trips
    registries: int
    chains: Mapping[str, int]  # per registry, its own chain
    rtt: float  # seconds

    @property
    def round_trips(self) -> int:
        return self.daemon + self.registries

    @property
    def seconds(self) -> float:
        return self.round_trips * self.rtt

    def as_dict(self) -> dict:
        return {"round_trips": self.round_trips, "daemon_round_trips": self.daemon,
                "registry_round_trips": self.registries, "chains": dict(self.chains),
                "rtt_ms": round(self.rtt * 1000, 3), "seconds": round(self.seconds, 4)}


def setup_round_trips(load: RegistryLoad) -> int:
    """Connection, ping and token: what must happen before the first HEAD."""
    token = load.token_server.connect + 1 if load.token_server is not None else 0
    return load.server.connect + 1 + token


def head_waves(heads: int, concurrency: int) -> int:
    return math.ceil(heads / concurrency) if heads > 0 else 0


def floor(*, rtt: float, daemon: Server, registries: Sequence[RegistryLoad], concurrency: int,
          listing_calls: int = LISTING_CALLS) -> Floor:
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    daemon_trips = daemon.connect + listing_calls
    busy = [r for r in registries if r.requests > 0]
    chains = {r.name: setup_round_trips(r) + head_waves(r.requests, concurrency) for r in busy}
    registry_trips = 0
    if busy:
        shared = min(setup_round_trips(r) for r in busy) + head_waves(sum(r.requests for r in busy), concurrency)
        registry_trips = max(max(chains.values()), shared)
    return Floor(daemon=daemon_trips, registries=registry_trips, chains=chains, rtt=rtt)
