"""Renders deploy/kubernetes/'s kustomizations, validates every object against a pinned
Kubernetes schema (kubernetes-validate) and checks that they agree with the binary and
the image: env names sessiond reads, ports, probes, image, user, security. Run by
scripts/manifests-test.sh, which passes the inputs; prints "N passed, N failed".

No kustomize or kubectl here, so rendering is done here for the subset the layouts
use (resources: files and directories, images:); any other kustomization field fails
the check rather than being skipped.
"""

import argparse
import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml

# What a kustomization here may hold; the rendering below implements exactly these.
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "images"}
# Longest drain of a stop (src/server.rs DRAIN_DEADLINE) plus the flush, in seconds.
DRAIN_SECONDS = 3


class Checks:
    """Counts and prints every check."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok: {name}")
        else:
            self.failed += 1
            print(f"FAILED: {name}{': ' + str(detail) if detail else ''}")


def render(directory, checks):
    """The objects a kustomization directory renders to, in order."""
    path = directory / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    checks.check(f"{path} uses only fields this renderer implements", not unknown, unknown)
    objects = []
    for resource in kustomization.get("resources", []):
        target = (directory / resource).resolve()
        if target.is_dir():
            objects.extend(render(target, checks))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(target.read_text()) if doc)
    for image in kustomization.get("images", []):
        for container in containers(objects):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return objects


def pod_spec(obj):
    """The pod template's spec of a workload, or None."""
    return obj.get("spec", {}).get("template", {}).get("spec")


def containers(objects):
    for obj in objects:
        spec = pod_spec(obj)
        if spec:
            yield from spec.get("containers", [])


def workloads(objects):
    return [obj for obj in objects if pod_spec(obj)]


def check_layout(name, objects, facts, checks):
    """What every rendered layout must hold, against the binary's and image's facts."""
    for obj in objects:
        label = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, facts.kubernetes_version, strict=True)
            checks.check(f"{label} is valid Kubernetes {facts.kubernetes_version}", True)
        except Exception as error:  # the library raises several types; all are failures
            # A schema error's message, not the whole schema it quotes.
            detail = getattr(error, "message", error)
            checks.check(f"{label} is valid Kubernetes {facts.kubernetes_version}", False, detail)
        checks.check(f"{label} holds no secret", obj["kind"] != "Secret")

    for workload in workloads(objects):
        label = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        security = spec.get("securityContext", {})
        checks.check(
            f"{label} runs as the image's non-root uid",
            security.get("runAsNonRoot") is True
            and security.get("runAsUser") == facts.uid
            and security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        )
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for container in spec["containers"]:
            where = f"{label} container {container['name']}"
            checks.check(
                f"{where} runs the image the docs build ({facts.image})",
                container["image"] == facts.image,
                container["image"],
            )
            env_names = {env["name"] for env in container.get("env", [])}
            checks.check(
                f"{where} sets only variables sessiond reads",
                env_names <= facts.env_names,
                env_names - facts.env_names,
            )
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            checks.check(
                f"{where} names the image's ports (grpc {facts.grpc_port}, admin {facts.admin_port})",
                ports == {"grpc": facts.grpc_port, "admin": facts.admin_port},
                ports,
            )
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                grpc = container.get(probe, {}).get("grpc", {})
                checks.check(
                    f"{where} {probe} is a grpc probe on the gRPC port",
                    grpc.get("port") == facts.grpc_port
                    and grpc.get("service", "") in ("", facts.health_service),
                    grpc,
                )
            context = container.get("securityContext", {})
            checks.check(
                f"{where} has a read-only root, no privilege escalation, no capabilities",
                context.get("readOnlyRootFilesystem") is True
                and context.get("allowPrivilegeEscalation") is False
                and context.get("capabilities", {}).get("drop") == ["ALL"],
            )
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            checks.check(f"{where} mounts the data dir {facts.data_dir}", facts.data_dir in mounts)
            pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})
            checks.check(
                f"{where} stops within the grace period ({grace} s)",
                grace > pause.get("seconds", 0) + DRAIN_SECONDS,
            )
            checks.check(
                f"{where} has memory requests and limits",
                "memory" in container.get("resources", {}).get("requests", {})
                and "memory" in container.get("resources", {}).get("limits", {}),
            )
        for other in objects:
            selector = other.get("spec", {}).get("selector", {})
            selector = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
            if other is not workload and other["kind"] in ("Service", "PodDisruptionBudget"):
                checks.check(
                    f"{name}: {other['kind']}/{other['metadata']['name']} selects {label}'s pods",
                    selector.items() <= pod_labels.items(),
                )
    for service in (obj for obj in objects if obj["kind"] == "Service"):
        ports = {port["name"]: port["targetPort"] for port in service["spec"]["ports"]}
        checks.check(
            f"{name}: Service/{service['metadata']['name']} targets the named ports",
            ports == {"grpc": "grpc", "admin": "admin"},
            ports,
        )


def check_shapes(layouts, checks):
    """The two shapes: one sled pod, or N Redis pods with a disruption budget."""
    embedded = layouts["embedded"]
    sets = [obj for obj in embedded if obj["kind"] == "StatefulSet"]
    checks.check(
        "embedded: one StatefulSet of exactly 1 replica with a volume claim for /data",
        len(sets) == 1
        and sets[0]["spec"]["replicas"] == 1
        and [claim["metadata"]["name"] for claim in sets[0]["spec"]["volumeClaimTemplates"]]
        == ["data"],
    )
    for name in ("scale-out", "autoscaled"):
        objects = layouts[name]
        deployments = [obj for obj in objects if obj["kind"] == "Deployment"]
        kinds = {obj["kind"] for obj in objects}
        env = {
            item["name"]: item
            for container in containers(deployments)
            for item in container.get("env", [])
        }
        urls = env.get("SESSIOND_REDIS_URLS", {}).get("valueFrom", {})
        checks.check(
            f"{name}: a Deployment of 2 or more replicas on Redis, with a PodDisruptionBudget",
            len(deployments) == 1
            and deployments[0]["spec"]["replicas"] >= 2
            and "PodDisruptionBudget" in kinds
            and env.get("SESSIOND_STORE", {}).get("value") == "redis",
        )
        checks.check(
            f"{name}: the Redis URLs come from a Secret or ConfigMap",
            "secretKeyRef" in urls or "configMapKeyRef" in urls,
        )
    autoscalers = [obj for obj in layouts["autoscaled"] if obj["kind"] == "HorizontalPodAutoscaler"]
    checks.check(
        "autoscaled: the HorizontalPodAutoscaler scales the Deployment",
        len(autoscalers) == 1
        and autoscalers[0]["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and autoscalers[0]["spec"]["scaleTargetRef"]["name"] == "sessiond",
    )


class Facts:
    """What the binary and the image say, read from their sources."""

    def __init__(self, args):
        help_text = Path(args.sessiond_help).read_text()
        dockerfile = Path(args.dockerfile).read_text()
        self.kubernetes_version = args.kubernetes_version
        # Config file settings read from the mounted file, not the environment.
        self.env_names = set(re.findall(r"\[env: (SESSIOND_[A-Z_]+)", help_text))
        self.grpc_port = int(re.search(r"SESSIOND_LISTEN=[0-9.]+:(\d+)", dockerfile)[1])
        self.admin_port = int(re.search(r"SESSIOND_METRICS_LISTEN=[0-9.]+:(\d+)", dockerfile)[1])
        self.data_dir = re.search(r"SESSIOND_DATA_DIR=(\S+)", dockerfile)[1]
        self.uid = int(re.search(r"^USER (\d+)", dockerfile, re.M)[1])
        self.image = f"sessiond:{args.version}"
        self.health_service = "session.v1.SessionService"
        self.dockerfile = dockerfile
        self.help_text = help_text


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="deploy/kubernetes")
    parser.add_argument("--sessiond-help", required=True, help="file with `sessiond --help`")
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--deploy-doc", required=True, help="docs/deploy.md")
    parser.add_argument("--version", required=True, help="Cargo.toml's version")
    parser.add_argument("--kubernetes-version", required=True)
    args = parser.parse_args()
    checks = Checks()
    facts = Facts(args)
    root = Path(args.root)

    checks.check(
        "sessiond --help lists the variables the image sets",
        {"SESSIOND_LISTEN", "SESSIOND_METRICS_LISTEN", "SESSIOND_DATA_DIR"} <= facts.env_names,
        facts.env_names,
    )
    checks.check(
        f"sessiond's own default port is the image's gRPC port {facts.grpc_port}",
        f"127.0.0.1:{facts.grpc_port}" in facts.help_text,
    )
    checks.check(
        f"the Dockerfile exposes {facts.grpc_port} and {facts.admin_port}",
        re.search(rf"^EXPOSE {facts.grpc_port} {facts.admin_port}$", facts.dockerfile, re.M),
    )
    checks.check(
        f"the Dockerfile's VERSION is Cargo.toml's {args.version}",
        f"ARG VERSION={args.version}\n" in facts.dockerfile,
    )
    checks.check(
        f"docs/deploy.md builds the image the manifests run ({facts.image})",
        f"-t {facts.image} " in Path(args.deploy_doc).read_text(),
    )

    layouts = {}
    for directory in sorted(path.parent for path in root.glob("*/kustomization.yaml")):
        if directory.name == "base":
            continue
        layouts[directory.name] = render(directory, checks)
        check_layout(directory.name, layouts[directory.name], facts, checks)
    checks.check(
        "the layouts are embedded, scale-out and autoscaled",
        sorted(layouts) == ["autoscaled", "embedded", "scale-out"],
        sorted(layouts),
    )
    check_shapes(layouts, checks)

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
