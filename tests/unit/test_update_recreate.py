"""engine.recreate against real inspect JSON (captured from dockerd 20.10: a container on a
user-defined network with an alias, a named volume, a restart policy, env and a label of its own,
on an image with ENV, CMD, WORKDIR, EXPOSE, VOLUME, HEALTHCHECK and LABEL defaults; and a
container in its network namespace)."""
import copy
import json
from pathlib import Path

from engine.recreate import derive

DATA = json.loads((Path(__file__).parent / "data" / "update_inspect.json").read_text())


def spec(container=None, image=None, names=None):
    return derive(copy.deepcopy(container or DATA["container"]), copy.deepcopy(image or DATA["image"]), names)


def test_env_keeps_only_what_the_user_set():
    assert spec().body["Env"] == ["USER_SET=1"]


def test_image_defaults_are_not_pinned():
    body = spec().body
    for key in ("Cmd", "WorkingDir", "Healthcheck", "Entrypoint"):
        assert key not in body, key
    assert body["ExposedPorts"] is None and body["Volumes"] is None


def test_labels_keep_the_users_and_drop_the_images():
    assert spec().body["Labels"] == {"mine": "yes"}


def test_a_value_the_user_changed_from_the_default_is_kept():
    container = copy.deepcopy(DATA["container"])
    container["Config"]["Cmd"] = ["/bin/sh", "-c", "echo mine"]
    container["Config"]["WorkingDir"] = "/srv"
    container["Config"]["Env"].append("V=overridden")
    container["Config"]["Labels"]["sg.variant"] = "mine"
    body = spec(container).body
    assert body["Cmd"] == ["/bin/sh", "-c", "echo mine"] and body["WorkingDir"] == "/srv"
    assert "V=overridden" in body["Env"] and body["Labels"]["sg.variant"] == "mine"


def test_an_entrypoint_of_ones_own_keeps_its_cmd_even_when_equal_to_the_images():
    container = copy.deepcopy(DATA["container"])
    container["Config"]["Entrypoint"] = ["/bin/busybox"]
    body = spec(container).body
    assert body["Entrypoint"] == ["/bin/busybox"] and body["Cmd"] == DATA["image"]["Config"]["Cmd"]


def test_the_default_hostname_is_the_old_id_and_is_not_carried_over():
    assert "Hostname" not in spec().body


def test_the_configured_reference_is_kept():
    assert spec().body["Image"] == DATA["container"]["Config"]["Image"]


def test_host_config_carries_binds_restart_policy_and_network_mode():
    host = spec().body["HostConfig"]
    assert host["Binds"] == ["appdata:/data:rw"]
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert host["NetworkMode"] == "usernet"


def test_the_network_keeps_its_alias_but_not_the_old_short_id():
    endpoints = spec().body["NetworkingConfig"]["EndpointsConfig"]
    assert list(endpoints) == ["usernet"] and endpoints["usernet"]["Aliases"] == ["appalias"]


def test_an_anonymous_volume_is_bound_by_name_so_its_data_stays():
    container = copy.deepcopy(DATA["container"])
    container["HostConfig"]["Binds"] = None
    container["Mounts"][0]["Name"] = "3f" * 32
    assert spec(container).body["HostConfig"]["Binds"] == [f"{'3f' * 32}:/data"]


def test_a_static_address_and_a_second_network_are_kept():
    container = copy.deepcopy(DATA["container"])
    networks = container["NetworkSettings"]["Networks"]
    networks["usernet"]["IPAMConfig"] = {"IPv4Address": "172.17.0.9"}
    networks["other"] = dict(networks["usernet"], Aliases=["second"], IPAMConfig=None)
    made = spec(container)
    assert made.body["NetworkingConfig"]["EndpointsConfig"]["usernet"]["IPAMConfig"] == {"IPv4Address": "172.17.0.9"}
    assert made.networks == (("other", {"Aliases": ["second"]}),)


def test_network_namespace_of_another_container_names_it_and_drops_what_it_owns():
    side = DATA["side"]
    target = side["HostConfig"]["NetworkMode"].split(":", 1)[1]
    body = derive(copy.deepcopy(side), copy.deepcopy(DATA["image"]), {target: "app"}).body
    assert body["HostConfig"]["NetworkMode"] == "container:app"
    assert "Hostname" not in body and "ExposedPorts" not in body and "NetworkingConfig" not in body


def test_derive_does_not_change_its_input():
    container, image = copy.deepcopy(DATA["container"]), copy.deepcopy(DATA["image"])
    derive(container, image)
    assert container == DATA["container"] and image == DATA["image"]
