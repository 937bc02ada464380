"""Credentials per registry, from a docker config.json and credential helpers.

For (registry, repository) the lookup follows the docker CLI (cli/config):
  1. credHelpers names a helper for the registry: its answer is final.
  2. credsStore is set: its answer is final too. "credentials not found" means
     anonymous, as docker reads it, not an error, and auths is not consulted
     (docker keeps only an e-mail there once a store holds the secrets).
  3. auths: the most specific usable entry wins. A "host/path" key (as podman
     and skopeo write) covers repositories under that path and beats the
     host-level spellings ("host", "https://host", "https://host/v1/"...).
     docker never writes such a key and reads one as a key for the whole host
     (its legacy-URL normalisation): spyglass keeps the path's meaning, so that
     two credentials can share a host (README, "How TLS and credentials work").
Nothing here reads the environment; callers pass paths and values in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import subprocess  # nosec B404 # credential helpers: a fixed argv, never a shell
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import ConfigurationError, InvalidReferenceError
from engine.name import Registry, parse_registry
from engine.singleflight import SingleFlight

__all__ = [
    "Credential",
    "Keychain",
    "ANONYMOUS_KEYCHAIN",
    "DockerConfigKeychain",
    "HelperRunner",
    "run_credential_helper",
    "default_config_dir",
]

_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # no "/": a name, never a path
_TOKEN_USERNAME = "<token>"  # nosec B105 # helpers answer this username when Secret is an identity token
_LEGACY_PATHS = frozenset({"v1", "v2"})  # "https://host/v1/" is the host, not a repository
_NOT_FOUND = b"credentials not found in native keychain"  # docker-credential-helpers' fixed message


@dataclass(frozen=True)
class Credential:
    """What to log in with, and where it came from; repr never shows a secret."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    @property
    def identity(self) -> str:
        """Tells credentials apart in cache keys without revealing the secret."""
        key = f"{self.password}\0{self.identity_token}".encode()
        message = f"{self.source}\0{self.username}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]

    @property
    def usable(self) -> bool:
        return bool(self.username or self.password or self.identity_token)


class Keychain(Protocol):
    def resolve(self, registry: Registry, repository: str) -> Credential | None:
        """The credential for this repository, or None to go anonymously."""


class _AnonymousKeychain:
    def resolve(self, registry: Registry, repository: str) -> Credential | None:
        return None

    def __repr__(self) -> str:
        return "ANONYMOUS_KEYCHAIN"


ANONYMOUS_KEYCHAIN: Keychain = _AnonymousKeychain()

# (helper name, server URL) -> the helper's answer; run_credential_helper is the real one.
HelperRunner = Callable[[str, str], "Credential | None"]


def default_config_dir(env: Mapping[str, str], home: Path) -> Path:
    """$DOCKER_CONFIG, else ~/.docker; the caller passes the process environment and Path.home()."""
    configured = env.get("DOCKER_CONFIG", "")
    return Path(configured) if configured else home / ".docker"


def run_credential_helper(name: str, server_url: str, *, runner=subprocess.run,
                          timeout: float = 10.0) -> Credential | None:
    """Ask docker-credential-<name> for server_url (the `get` verb of the helper protocol).

    Messages never quote the helper's output: it may hold the secret.
    """
    subject = f"credential helper {json.dumps(name)} for {json.dumps(server_url)}"
    if not _HELPER_NAME.fullmatch(name):
        raise ConfigurationError(f"run {subject}: not a valid helper name")
    program = f"docker-credential-{name}"
    try:
        done = runner([program, "get"], input=server_url.encode(), capture_output=True,
                      timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        # from None: the TimeoutExpired carries whatever the helper had printed
        raise ConfigurationError(f"run {subject}: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise ConfigurationError(f"run {subject}: cannot start {program}: {exc.strerror}") from exc
    if done.returncode != 0:
        if (done.stdout or b"").strip() == _NOT_FOUND:  # the helper protocol's one "nothing stored" answer
            return None
        raise ConfigurationError(f"run {subject}: exited with status {done.returncode}")
    return _helper_answer(done.stdout, subject, name)


def _helper_answer(stdout: bytes, subject: str, name: str) -> Credential | None:
    try:
        answer = json.loads(stdout)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError; both hold the output
        answer = None
    if not (isinstance(answer, dict) and isinstance(answer.get("Username", ""), str)
            and isinstance(answer.get("Secret", ""), str)):
        raise ConfigurationError(f"run {subject}: malformed answer (expected JSON with Username, Secret)")
    username, secret = answer.get("Username", ""), answer.get("Secret", "")
    source = f"credential helper {json.dumps(name)}"
    if username == _TOKEN_USERNAME:
        return Credential(identity_token=secret, source=source) if secret else None
    found = Credential(username=username, password=secret, source=source)
    return found if found.usable else None


@dataclass(frozen=True)
class _Key:
    """A config.json key, read as registry + optional repository prefix."""

    text: str
    registry: Registry
    path: str  # "" for a host-level key
    form: int  # among host-level spellings of one registry, lower is preferred

    def covers(self, registry: Registry, repository: str) -> bool:
        return registry == self.registry and (
            not self.path or repository == self.path or repository.startswith(self.path + "/"))

    def specificity(self) -> tuple[int, int, str]:
        """Sorts the best key first: longest path, then the preferred spelling."""
        return (-len(self.path), self.form, self.text)


def _parse_key(text: str) -> _Key | None:
    rest, form = text, 1
    for scheme, scheme_form in (("https://", 2), ("http://", 3)):
        if rest[:len(scheme)].lower() == scheme:
            rest, form = rest[len(scheme):], scheme_form
    host, _, path = rest.partition("/")
    path = path.strip("/")
    if path in _LEGACY_PATHS:
        path, form = "", 4
    try:
        registry = parse_registry(host)
    except InvalidReferenceError:
        return None  # a key no reference can match; docker ignores these too
    return _Key(text, registry, path, 0 if text == registry.credential_key else form)


class DockerConfigKeychain:
    """Credentials from one docker config.json; helper answers are kept for its lifetime."""

    def __init__(self, *, auths: Mapping[str, Credential] | None = None,
                 helpers: Mapping[str, str] | None = None, store: str = "",
                 source_name: str = "config.json",
                 helper_runner: HelperRunner = run_credential_helper):
        self._auths = _sorted_keys((auths or {}).items())
        # docker consults credHelpers by host only, so path keys are not helpers' business
        self._helpers = [(key, name) for key, name in _sorted_keys((helpers or {}).items())
                         if not key.path and name]
        self._store = store
        self._source_name = source_name
        self._runner = helper_runner
        # (helper, server) -> its answer, asked once even when several threads need it at the same
        # time; a broken helper's error is remembered too, not re-run per image
        self._answers: SingleFlight[tuple[str, str], Credential | None] = SingleFlight(memo=True)

    @classmethod
    def from_mapping(cls, data: object, *, source_name: str = "config.json",
                     helper_runner: HelperRunner = run_credential_helper) -> DockerConfigKeychain:
        """From an already-parsed config.json; a malformed one raises ConfigurationError."""
        auths, helpers, store = _read_config(data, source_name)
        return cls(auths=auths, helpers=helpers, store=store, source_name=source_name,
                   helper_runner=helper_runner)

    @classmethod
    def from_file(cls, path: Path, *,
                  helper_runner: HelperRunner = run_credential_helper) -> DockerConfigKeychain:
        """From a config.json on disk; no file means no credentials."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(source_name=str(path), helper_runner=helper_runner)
        except OSError as exc:
            raise ConfigurationError(f"load docker config {json.dumps(str(path))}: {exc.strerror}") from exc
        return cls.from_mapping(_parse_json(raw, path), source_name=str(path),
                                helper_runner=helper_runner)

    def resolve(self, registry: Registry, repository: str) -> Credential | None:
        helper = next((name for key, name in self._helpers if key.registry == registry), None)
        if helper is not None:
            return self._ask(helper, registry.credential_key)
        if self._store:
            return self._ask(self._store, registry.credential_key)
        return next((cred for key, cred in self._auths
                     if cred.usable and key.covers(registry, repository)), None)

    def _ask(self, helper: str, server: str) -> Credential | None:
        try:
            return self._answers.do((helper, server), lambda: self._runner(helper, server))
        except ConfigurationError as exc:  # a new error per caller: the remembered one is shared
            raise ConfigurationError(str(exc)) from exc

    def __repr__(self) -> str:
        return (f"DockerConfigKeychain(source={self._source_name!r}, auths={len(self._auths)}, "
                f"credHelpers={len(self._helpers)}, credsStore={self._store!r})")


def _sorted_keys(items) -> list:
    parsed = [(_parse_key(text), value) for text, value in items]
    return sorted(((key, value) for key, value in parsed if key is not None),
                  key=lambda pair: pair[0].specificity())


def _parse_json(raw: bytes, path: Path) -> object:
    # from None below: both decode errors hold the file's content, which may hold secrets
    where = f"load docker config {json.dumps(str(path))}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{where}: not UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where}: not valid JSON (line {exc.lineno} column {exc.colno})") from None


def _read_config(data: object, source_name: str) -> tuple[dict[str, Credential], dict[str, str], str]:
    where = f"load docker config {json.dumps(source_name)}"
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where}: not a JSON object")
    auths = {key: _read_auth(entry, f"auths[{json.dumps(key)}]", source_name, where)
             for key, entry in _section(data, "auths", where).items()}
    helpers = {key: _string(name, f"credHelpers[{json.dumps(key)}]", where)
               for key, name in _section(data, "credHelpers", where).items()}
    return auths, helpers, _string(data.get("credsStore"), "credsStore", where)


def _section(data: Mapping, name: str, where: str) -> dict:
    section = data.get(name)
    if section is None:  # absent, or JSON null as docker reads it
        return {}
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"{where}: {name} is not an object")
    if not all(isinstance(key, str) for key in section):
        raise ConfigurationError(f"{where}: {name} has a key that is not a string")
    return dict(section)


def _string(value: object, subject: str, where: str) -> str:
    if value is None:  # absent, or JSON null as docker reads it
        return ""
    if not isinstance(value, str):
        raise ConfigurationError(f"{where}: {subject} is not a string")
    return value


def _read_auth(entry: object, subject: str, source_name: str, where: str) -> Credential:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: {subject} is not an object")
    fields = {name: _string(entry.get(name), f"{subject}.{name}", where)
              for name in ("auth", "username", "password", "identitytoken")}
    username, password = fields["username"], fields["password"]
    if fields["auth"]:
        username, password = _decode_auth(fields["auth"], f"{where}: {subject}.auth")
    return Credential(username, password, fields["identitytoken"], f"{source_name} {subject}")


def _decode_auth(value: str, where: str) -> tuple[str, str]:
    """base64 of "user:password"; the password may hold ":". Errors never quote the value."""
    compact = value.replace("\r", "").replace("\n", "")  # docker's decoder skips line breaks
    try:
        # Missing padding is added: some tools drop it and the meaning is unambiguous.
        decoded = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # bad alphabet, bad length, non-ASCII, not UTF-8
        raise ConfigurationError(f"{where} is not base64 of UTF-8 \"user:password\"") from None
    username, colon, password = text.partition(":")
    if not colon or not username:
        raise ConfigurationError(f"{where} does not decode to \"user:password\"")
    return username, password.strip("\x00")
