#!/usr/bin/env bash
# The deployment checks' tools, pinned, from the package registries only:
#   helm and kubeconform   built with `go install` (Go module proxy)
#   Kubernetes JSON schemas from the kubernetes-validate wheel (PyPI)
#   promtool               Debian's prometheus package (apt, as root)
# Everything lands in $BATON_CACHE_DIR/tools (default ~/.cache/baton/tools: bin/ and
# schemas/), kept across clones like the fetched Kafka broker; quick when already there.
# The schemas' references become absolute file URLs (kubeconform resolves no other kind
# of local reference). tests/deploy/tools.py reads the same paths.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.7.0
SCHEMAS_PACKAGE=kubernetes-validate==1.37.0
KUBERNETES_VERSION=1.33.0

tools="${BATON_CACHE_DIR:-$HOME/.cache/baton}/tools"
mkdir -p "$tools/bin"
tools=$(cd "$tools" && pwd)
bin="$tools/bin"

# The Go toolchain's usual place, when the shell's PATH lacks it.
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

installed() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1-version" 2>/dev/null)" = "$2" ]; }

for spec in "helm helm.sh/helm/v4/cmd/helm $HELM_VERSION" \
            "kubeconform github.com/yannh/kubeconform/cmd/kubeconform $KUBECONFORM_VERSION"; do
  read -r name module version <<<"$spec"
  if ! installed "$name" "$version"; then
    command -v go >/dev/null || { echo "install-tools: go is required for $name" >&2; exit 1; }
    GOBIN="$bin" go install "$module@$version"
    echo "$version" >"$bin/.$name-version"
  fi
done

schemas="$tools/schemas/v$KUBERNETES_VERSION-local-strict"
if [ "$(cat "$schemas/.from" 2>/dev/null)" != "$SCHEMAS_PACKAGE $schemas" ]; then
  wheel_dir=$(mktemp -d)
  trap 'rm -rf "$wheel_dir"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$wheel_dir" "$SCHEMAS_PACKAGE"
  rm -rf "$schemas" && mkdir -p "$schemas"
  python3 - "$wheel_dir"/*.whl "v$KUBERNETES_VERSION-local-strict" "$schemas" <<'PY'
import pathlib, sys, zipfile
wheel, variant, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
prefix = f"kubernetes_validate/kubernetes-json-schema/{variant}/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.endswith(".json"):
            text = z.read(name).decode()
            # The package resolves "/api/_definitions.json" itself; kubeconform reads files.
            text = text.replace('"/api/_definitions.json#', f'"file://{out}/_definitions.json#')
            (out / name[len(prefix):]).write_text(text)
PY
  echo "$SCHEMAS_PACKAGE $schemas" >"$schemas/.from"
fi

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-tools: promtool missing (apt-get install --no-install-recommends prometheus, as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
