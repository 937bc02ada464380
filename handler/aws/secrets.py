"""The daemon's TLS material and the registries' credentials, from Secrets Manager or SSM.

TLS material for one endpoint is either
  - one Secrets Manager secret whose string is JSON ``{"ca": PEM, "cert": PEM, "key": PEM}``, or
  - ``ssm:/prefix``: three SecureString parameters ``/prefix/ca``, ``/prefix/cert``, ``/prefix/key``.
The Docker SDK wants files, so :func:`private_cert_dir` writes them into a fresh
folder only this process can read (0700, files 0600) and removes it on the way out.

Registry credentials are one secret holding a docker ``config.json``; they are
parsed in memory and never written anywhere. No message here quotes a secret's value.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from engine.authn import DockerConfigKeychain
from engine.errors import ConfigurationError
from handler.aws.clients import aws_errors, aws_failure
from handler.settings import BY_NAME

SSM_PREFIX = "ssm:"
_PARTS = ("ca", "cert", "key")


@dataclass(frozen=True)
class TlsMaterial:
    ca: str = field(repr=False)
    cert: str = field(repr=False)
    key: str = field(repr=False)
    source: str = ""


def fetch_tls_material(reference: str, *, secrets_client=None, ssm_client=None) -> TlsMaterial:
    """The CA, client certificate and key named by reference (a secret id, or ssm:/prefix)."""
    if reference.startswith(SSM_PREFIX):
        return _from_ssm(reference[len(SSM_PREFIX):].rstrip("/"), ssm_client)
    values = _secret_json(reference, secrets_client, "TLS secret")
    where = f"TLS secret {json.dumps(reference)}"
    missing = [part for part in _PARTS if not isinstance(values.get(part), str) or not values[part].strip()]
    if missing:
        raise ConfigurationError(f"read {where}: missing {', '.join(missing)} (expected JSON with ca, cert, key)")
    return _checked({part: values[part] for part in _PARTS}, where)


def fetch_docker_config(secret_id: str, *, secrets_client) -> DockerConfigKeychain:
    """A keychain from a secret holding docker config.json; ConfigurationError when malformed."""
    data = _secret_json(secret_id, secrets_client, "registry credentials secret")
    return DockerConfigKeychain.from_mapping(data, source_name=f"secret {json.dumps(secret_id)}")


@contextlib.contextmanager
def private_cert_dir(material: TlsMaterial) -> Iterator[Path]:
    """ca.pem, cert.pem and key.pem in a private folder that is gone when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="spyglass-tls-"))  # mkdtemp: mode 0700, unique name
    try:
        for part in _PARTS:
            _write_private(folder / f"{part}.pem", getattr(material, part))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text if text.endswith("\n") else text + "\n")


def fetch_notify_urls(secret_id: str, *, secrets_client) -> tuple[str, ...]:
    """The Apprise URLs a secret holds: a JSON list of strings, or one URL a line (commas as in
    SPYGLASS_NOTIFY). Nothing of the value is ever quoted in an error: every URL is a secret."""
    where = f"notify URLs secret {json.dumps(secret_id)}"
    text = _secret_text(secret_id, secrets_client, where, "a JSON list or one URL a line")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigurationError(f"read {where}: starts like a JSON list but is not valid JSON") from None
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise ConfigurationError(f"read {where}: a JSON list, but not of strings")
        text = "\n".join(data)
    urls = BY_NAME["notify_urls"].kind.parse(text)
    if not urls:
        raise ConfigurationError(f"read {where}: holds no URL")
    return urls


def _secret_text(secret_id: str, client, where: str, expected: str) -> str:
    try:
        answer = client.get_secret_value(SecretId=secret_id)
    except aws_errors() as exc:
        raise aws_failure(f"read {where}", exc) from None
    text = answer.get("SecretString")
    if text is None:
        raise ConfigurationError(f"read {where}: a binary secret; expected {expected}")
    return text


def _secret_json(secret_id: str, client, what: str) -> dict:
    where = f"{what} {json.dumps(secret_id)}"
    text = _secret_text(secret_id, client, where, "a JSON string")
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError(f"read {where}: not valid JSON") from None  # never quote the value
    if not isinstance(data, dict):
        raise ConfigurationError(f"read {where}: not a JSON object")
    return data


def _from_ssm(prefix: str, client) -> TlsMaterial:
    where = f"TLS parameters {json.dumps(prefix + '/{ca,cert,key}')}"
    names = {f"{prefix}/{part}": part for part in _PARTS}
    try:
        answer = client.get_parameters(Names=list(names), WithDecryption=True)
    except aws_errors() as exc:
        raise aws_failure(f"read {where}", exc) from None
    found = {names[p["Name"]]: p.get("Value", "") for p in answer.get("Parameters", []) if p.get("Name") in names}
    missing = [part for part in _PARTS if not found.get(part, "").strip()]
    if missing:
        raise ConfigurationError(f"read {where}: missing {', '.join(missing)}")
    return _checked(found, where)


def _checked(values: dict[str, str], where: str) -> TlsMaterial:
    not_pem = [part for part in _PARTS if "-----BEGIN " not in values[part]]
    if not_pem:
        raise ConfigurationError(f"read {where}: {', '.join(not_pem)} not PEM")
    return TlsMaterial(values["ca"], values["cert"], values["key"], source=where)
