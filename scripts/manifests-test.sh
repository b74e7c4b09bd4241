#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline: renders each kustomization, checks every object
# against the schema of a pinned Kubernetes version (kubernetes-validate, pinned, in a
# venv under target/), and checks the manifests against what sessiond accepts (its
# --help), the Dockerfile and docs/deploy.md (scripts/manifests-check.py). Prints
# "N passed, N failed"; exits non-zero on any failure. No cluster is involved.
set -euo pipefail
cd "$(dirname "$0")/.."

kubernetes_validate_version=1.37.0
# The oldest Kubernetes the manifests are for: grpc probes are GA since 1.27, the
# preStop sleep action on by default since 1.30; 1.33 is the oldest release still
# supported upstream when this was written.
kubernetes_version=1.33.0

venv=target/manifests-venv
if ! "$venv/bin/python" -c "import kubernetes_validate" 2>/dev/null ||
  [[ "$("$venv/bin/python" -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')" != "$kubernetes_validate_version" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$kubernetes_validate_version"
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
help_file="$(mktemp)"
trap 'rm -f "$help_file"' EXIT
# The binary the image ships, as scripts/container-test.sh (run first, as in .ci/run)
# left it: its flags and env are the same in every profile.
[[ -x target/container/sessiond ]] || scripts/container-test.sh >/dev/null
target/container/sessiond --help >"$help_file"

"$venv/bin/python" scripts/manifests-check.py \
  --root deploy/kubernetes \
  --sessiond-help "$help_file" \
  --dockerfile Dockerfile \
  --deploy-doc docs/deploy.md \
  --version "$version" \
  --kubernetes-version "$kubernetes_version"
