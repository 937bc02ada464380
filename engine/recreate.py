"""The new container's configuration, from the old one's inspect and its image's (pure: dicts in, dicts out).

Keep only what the user set. ``docker inspect`` merges the image's defaults into the container's
Config, so a value there equal to the old image's default (Env entries, Cmd, Entrypoint,
WorkingDir, ExposedPorts, Volumes, Healthcheck, Labels, User, StopSignal) is left out, and the
new image's default applies; the rest is copied as it is. One value cannot be told apart: a
setting the user made equal to the old image's default follows the image from now on.

HostConfig is all the user's; three things in it are rewritten:
    network_mode container:<old id>    → container:<name> (that container may be recreated too), and
                                         the hostname and ports inspect copies from it left out
    anonymous volumes                  → bound by name to the same path, so their data is kept
    the old container's own hostname, MAC address and short-ID alias → not carried over
Networks: the first goes into the create call (API 1.41 takes one), the others are connected
before the start, each with its aliases, static addresses, links and driver options.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Config fields whose value may be the image's default: left out when equal to it.
_IMAGE_DEFAULTS = ("Cmd", "Entrypoint", "WorkingDir", "Healthcheck", "User", "StopSignal", "Shell", "OnBuild")
# Keys of these mappings that equal the image's (same key, same value) are the image's.
_MERGED_MAPPINGS = ("Labels", "ExposedPorts", "Volumes")
_ENDPOINT_KEYS = ("IPAMConfig", "Links", "Aliases", "DriverOpts")
# What inspect shows of the namespace owner's for a network_mode container:X container.
_NAMESPACE_OWNED = ("Hostname", "Domainname", "MacAddress", "ExposedPorts")


@dataclass(frozen=True)
class CreateSpec:
    name: str
    body: dict  # the create call's body: Config fields, HostConfig, NetworkingConfig
    networks: tuple[tuple[str, dict], ...] = field(default=())  # connected after the create


def derive(container: dict, image: dict, names_by_id: dict[str, str] | None = None) -> CreateSpec:
    """What creates the same container again on the image its configured reference names now."""
    config = _user_config(container.get("Config") or {}, (image.get("Config") or {}), container["Id"])
    host = _host_config(container, names_by_id or {})
    if host.get("NetworkMode", "").startswith("container:"):
        for key in _NAMESPACE_OWNED:  # the other container's: docker refuses them beside this mode
            config.pop(key, None)
    first, *others = _endpoints(container)
    body = {**config, "HostConfig": host}
    if first is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {first[0]: first[1]}}
    return CreateSpec(container["Name"].lstrip("/"), body, tuple(others))


def _user_config(config: dict, defaults: dict, container_id: str) -> dict:
    kept = dict(config)
    for key in _IMAGE_DEFAULTS:
        if key in kept and kept[key] == defaults.get(key):
            del kept[key]
    if "Entrypoint" in kept and config.get("Cmd") is not None:
        kept["Cmd"] = config["Cmd"]  # an entrypoint of one's own clears the image's Cmd: this Cmd is the user's
    image_env = set(defaults.get("Env") or ())
    kept["Env"] = [entry for entry in config.get("Env") or () if entry not in image_env]
    for key in _MERGED_MAPPINGS:
        own = {k: v for k, v in (config.get(key) or {}).items() if (defaults.get(key) or {}).get(k, object()) != v}
        kept[key] = own or None
    if kept.get("Hostname") == container_id[:12]:
        del kept["Hostname"]  # docker's default hostname: the old container's short ID
    if not config.get("MacAddress"):
        kept.pop("MacAddress", None)
    return kept


def _host_config(container: dict, names_by_id: dict[str, str]) -> dict:
    host = dict(container.get("HostConfig") or {})
    mode = host.get("NetworkMode") or ""
    if mode.startswith("container:"):
        target = mode.split(":", 1)[1]
        host["NetworkMode"] = "container:" + names_by_id.get(target, target)
    binds = list(host.get("Binds") or [])
    bound = {_bind_target(b) for b in binds} | {m.get("Target") for m in host.get("Mounts") or ()}
    for mount in container.get("Mounts") or ():
        if mount.get("Type") == "volume" and mount.get("Destination") not in bound and mount.get("Name"):
            binds.append(f"{mount['Name']}:{mount['Destination']}" + ("" if mount.get("RW", True) else ":ro"))
    host["Binds"] = binds or None
    return host


def _bind_target(bind: str) -> str:
    parts = bind.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _endpoints(container: dict) -> list[tuple[str, dict] | None]:
    """(network, endpoint settings) per network the container is on, its NetworkMode's first."""
    mode = (container.get("HostConfig") or {}).get("NetworkMode") or ""
    networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
    if mode.startswith("container:") or mode in ("none", "host") or not networks:
        return [None]
    names = sorted(networks, key=lambda n: (n != mode, n))
    short_id = container["Id"][:12]
    return [(name, _endpoint(networks[name], short_id)) for name in names]


def _endpoint(settings: dict, short_id: str) -> dict:
    endpoint = {k: settings[k] for k in _ENDPOINT_KEYS if settings.get(k)}
    aliases = [a for a in endpoint.get("Aliases") or () if a != short_id]  # docker adds the new ID's itself
    if aliases:
        endpoint["Aliases"] = aliases
    else:
        endpoint.pop("Aliases", None)
    return endpoint
