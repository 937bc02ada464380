"""Native ECR credentials: which hosts are ECR, and the token from ecr:GetAuthorizationToken (moto)."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from engine.authn import Credential
from engine.clock import FakeClock
from engine.errors import ConfigurationError
from engine.name import parse_registry
from handler.aws.ecr import EcrKeychain, EcrRegistry, EcrTokens, parse_ecr_host
from tests.unit.overlap import Held, overlapping


@pytest.mark.parametrize("host, expected", [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com", EcrRegistry("123456789012", "us-east-1", False)),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", EcrRegistry("123456789012", "us-gov-west-1", True)),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", EcrRegistry("123456789012", "cn-north-1", False)),
    ("123456789012.dkr-ecr.eu-west-1.on.aws", EcrRegistry("123456789012", "eu-west-1", False)),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", EcrRegistry("123456789012", "us-iso-east-1", False)),
    ("123456789012.DKR.ECR.us-east-1.AMAZONAWS.COM", EcrRegistry("123456789012", "us-east-1", False)),
    ("public.ecr.aws", None),
    ("12345678901.dkr.ecr.us-east-1.amazonaws.com", None),  # 11 digits
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", None),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com:443", None),
    ("registry.example.com", None),
])
def test_ecr_hosts(host, expected):
    assert parse_ecr_host(host) == expected


class Fallback:
    def __init__(self):
        self.asked = []

    def resolve(self, registry, repository):
        self.asked.append(registry.name)
        return Credential("bob", "pw", source="config")


def test_an_ecr_host_gets_a_token_from_the_role_and_others_go_to_the_fallback(aws):
    moto_expiry = datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp()  # moto's tokens all expire then
    tokens = EcrTokens(lambda region, fips: aws.clients.client("ecr", region=region, fips=fips),
                       clock=FakeClock(start=moto_expiry - 12 * 3600))
    fallback = Fallback()
    keychain = EcrKeychain(fallback, tokens)
    ecr = parse_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    first = keychain.resolve(ecr, "team/app")
    assert first.username == "AWS" and first.password and first.source == "ecr us-east-1"
    assert keychain.resolve(ecr, "team/other") == first and tokens.fetches == 1
    assert keychain.resolve(parse_registry("registry.example.com"), "x").username == "bob"
    assert fallback.asked == ["registry.example.com"]


class StaticEcr:
    def __init__(self, expires_at: datetime, error: Exception | None = None):
        self.expires_at, self.error, self.calls = expires_at, error, 0

    def get_authorization_token(self, **kwargs):
        self.calls += 1
        if self.error:
            raise self.error
        token = base64.b64encode(f"AWS:pw{self.calls}".encode()).decode()
        return {"authorizationData": [{"authorizationToken": token, "expiresAt": self.expires_at}]}


def test_a_token_is_renewed_before_it_expires():
    clock = FakeClock(start=1_700_000_000.0)
    client = StaticEcr(datetime.fromtimestamp(clock.now(), tz=timezone.utc) + timedelta(hours=12))
    tokens = EcrTokens(lambda region, fips: client, clock=clock)
    registry = EcrRegistry("123456789012", "us-east-1", False)
    assert tokens.credential(registry, "h").password == "pw1"
    clock.advance(11 * 3600)
    assert tokens.credential(registry, "h").password == "pw1"
    clock.advance(3600 - 60)
    assert tokens.credential(registry, "h").password == "pw2"


def test_concurrent_callers_for_one_registry_ask_ecr_once():
    client = StaticEcr(datetime.now(timezone.utc) + timedelta(hours=12))
    held = Held(lambda: client)
    tokens = EcrTokens(held)
    registry = EcrRegistry("123456789012", "us-east-1", False)
    results = overlapping(tokens._fetching, registry, held, lambda: tokens.credential(registry, "h").password, 8)
    assert results == ["pw1"] * 8 and held.calls == 1 and client.calls == 1 and tokens.fetches == 1


def test_a_refusal_is_a_configuration_error_for_that_registry_only():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                         "GetAuthorizationToken")
    client = StaticEcr(datetime.now(timezone.utc), error=denied)
    keychain = EcrKeychain(Fallback(), EcrTokens(lambda region, fips: client))
    with pytest.raises(ConfigurationError, match="ecr:GetAuthorizationToken for .*AccessDeniedException"):
        keychain.resolve(parse_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), "app")
    assert keychain.resolve(parse_registry("docker.io"), "library/nginx").username == "bob"


def test_a_fips_registry_is_asked_through_the_fips_endpoint():
    from handler.aws.clients import AwsClients

    asked, clients = [], AwsClients()
    client = StaticEcr(datetime.now(timezone.utc) + timedelta(hours=12))

    def client_for(region, fips):
        asked.append(clients.client("ecr", region=region, fips=fips).meta.endpoint_url)
        return client

    EcrTokens(client_for).credential(EcrRegistry("123456789012", "us-gov-west-1", True), "h")
    assert asked == ["https://ecr-fips.us-gov-west-1.amazonaws.com"]
