"""A real Docker daemon, registries and a token server for spyglass's integration tests.

    from tests.stack import Stack, build_demo_fleet

    with Stack().start(workdir) as stack:
        expected = build_demo_fleet(stack)
        subprocess.run([sys.executable, "-m", "handler.cli", "scan", *stack.scan_args()], env=os.environ | stack.env())

Needs root, /usr/sbin/dockerd and /usr/bin/docker-registry. Every process it
starts is stopped by pid.
"""
from .access import AccessPolicy
from .demo import build_demo_fleet
from .distribution import Descriptor, Platform, RegistryHttp
from .dockerd import ApiCall, DockerDaemon
from .fleet import Account, Stack
from .images import ContainerSpec, make_image, pull, push, rootfs_tar, run_container, run_containers, untag
from .pki import CertPair, Pki, make_pki, write_docker_cert_dir
from .procs import StackError
from .registry import Registry, RegistryRequest, TokenAuth
from .tokenserver import TokenRequest, TokenServer, TokenSettings

__all__ = [
    "AccessPolicy", "Account", "ApiCall", "CertPair", "ContainerSpec", "Descriptor", "DockerDaemon",
    "Pki", "Platform", "Registry", "RegistryHttp", "RegistryRequest", "Stack", "StackError", "TokenAuth",
    "TokenRequest", "TokenServer", "TokenSettings", "build_demo_fleet", "make_image", "make_pki", "pull",
    "push", "rootfs_tar", "run_container", "run_containers", "untag", "write_docker_cert_dir",
]
