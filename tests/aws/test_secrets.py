"""TLS material from Secrets Manager and SSM, registry credentials from a secret (moto)."""
from __future__ import annotations

import base64
import stat

import pytest

from engine.errors import ConfigurationError
from engine.name import parse_registry
from handler.aws.secrets import fetch_docker_config, fetch_tls_material, private_cert_dir

PEM = {part: f"-----BEGIN {label}-----\nAAAA{part}\n-----END {label}-----\n"
       for part, label in (("ca", "CERTIFICATE"), ("cert", "CERTIFICATE"), ("key", "PRIVATE KEY"))}


def test_a_secret_becomes_three_private_files_that_are_gone_afterwards(aws):
    aws.put_secret("spyglass/docker-01", PEM)
    material = fetch_tls_material("spyglass/docker-01", secrets_client=aws.client("secretsmanager"))
    assert "AAAAkey" not in repr(material)
    with private_cert_dir(material) as folder:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for part in ("ca", "cert", "key"):
            path = folder / f"{part}.pem"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == PEM[part]
    assert not folder.exists()


def test_the_folder_is_removed_when_the_scan_fails(aws):
    aws.put_secret("spyglass/docker-01", PEM)
    material = fetch_tls_material("spyglass/docker-01", secrets_client=aws.client("secretsmanager"))
    with pytest.raises(RuntimeError):
        with private_cert_dir(material) as folder:
            raise RuntimeError("scan failed")
    assert not folder.exists()


def test_ssm_securestring_parameters_under_a_prefix(aws):
    ssm = aws.client("ssm")
    for part, pem in PEM.items():
        ssm.put_parameter(Name=f"/spyglass/docker-01/{part}", Value=pem, Type="SecureString")
    material = fetch_tls_material("ssm:/spyglass/docker-01/", ssm_client=ssm)
    assert (material.ca, material.cert, material.key) == (PEM["ca"], PEM["cert"], PEM["key"])


def test_a_missing_ssm_parameter_is_named(aws):
    aws.client("ssm").put_parameter(Name="/spyglass/x/ca", Value=PEM["ca"], Type="SecureString")
    with pytest.raises(ConfigurationError, match="missing cert, key"):
        fetch_tls_material("ssm:/spyglass/x", ssm_client=aws.client("ssm"))


@pytest.mark.parametrize("value, expected", [
    ({"ca": PEM["ca"], "cert": PEM["cert"]}, "missing key"),
    ({"ca": PEM["ca"], "cert": PEM["cert"], "key": "hunter2-not-a-pem"}, "key not PEM"),
    ("{not json hunter2", "not valid JSON"),
    ('["hunter2"]', "not a JSON object"),
])
def test_a_malformed_secret_is_named_without_quoting_its_value(aws, value, expected):
    aws.put_secret("spyglass/bad", value)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        fetch_tls_material("spyglass/bad", secrets_client=aws.client("secretsmanager"))
    assert "hunter2" not in str(caught.value) and "spyglass/bad" in str(caught.value)
    assert caught.value.__cause__ is None


def test_registry_credentials_come_from_a_docker_config_secret(aws):
    auth = base64.b64encode(b"alice:s3cret").decode()
    aws.put_secret("spyglass/registries", {"auths": {"registry.example.com": {"auth": auth}}})
    keychain = fetch_docker_config("spyglass/registries", secrets_client=aws.client("secretsmanager"))
    credential = keychain.resolve(parse_registry("registry.example.com"), "team/app")
    assert (credential.username, credential.password) == ("alice", "s3cret")
    assert "spyglass/registries" in credential.source and "s3cret" not in repr(credential)


def test_a_malformed_docker_config_secret_is_a_configuration_error(aws):
    aws.put_secret("spyglass/registries", {"auths": {"registry.example.com": {"auth": "%%%"}}})
    with pytest.raises(ConfigurationError, match="spyglass/registries"):
        fetch_docker_config("spyglass/registries", secrets_client=aws.client("secretsmanager"))


@pytest.mark.parametrize("value, expected", [
    ('["slack://a/b/c", "json://hook.example/x"]', ("slack://a/b/c", "json://hook.example/x")),
    ("slack://a/b/c\njson://hook.example/x\n", ("slack://a/b/c", "json://hook.example/x")),
    ("mailto://u:pw@example.com?to=a@example.com,b@example.com", ("mailto://u:pw@example.com?to=a@example.com,b@example.com",)),
])
def test_notify_urls_come_from_a_secret_as_a_json_list_or_lines(aws, value, expected):
    from handler.aws.secrets import fetch_notify_urls

    aws.put_secret("spyglass/notify", value)
    assert fetch_notify_urls("spyglass/notify", secrets_client=aws.client("secretsmanager")) == expected


@pytest.mark.parametrize("value, expected", [
    ("[\"slack://hunter2/x\"", "not valid JSON"),
    ('["slack://hunter2/x", {"u": 1}]', "not of strings"),
    ("  \n", "holds no URL"),
])
def test_a_malformed_notify_secret_is_named_without_quoting_its_value(aws, value, expected):
    from handler.aws.secrets import fetch_notify_urls

    aws.put_secret("spyglass/notify", value)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        fetch_notify_urls("spyglass/notify", secrets_client=aws.client("secretsmanager"))
    assert "hunter2" not in str(caught.value)
