#!/usr/bin/env bash
# Build Dapr's daprd, placement, scheduler and sentry from the upstream Go module, with the
# curated component set in curated/components.go, into the folder given as $1.
# Usage: runtime/dapr/build.sh OUT_DIR
set -euo pipefail
out="${1:?usage: build.sh OUT_DIR}"
cd "$(dirname "$0")"
# The machine's Go satisfies dapr's `go` line; where it does not, let Go fetch the toolchain
# dapr asks for through the module proxy (e.g. GOTOOLCHAIN=go1.27.3).
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export CGO_ENABLED=0
# go.sum pins the hash of every module the build uses, so the build never needs the public
# checksum database (which does not answer for all of them here). To move to another Dapr
# version, run with AGENTIA_DAPR_REFRESH_SUMS=1: it trusts the module proxy once and writes
# the new go.mod/go.sum back for review.
refresh="${AGENTIA_DAPR_REFRESH_SUMS:-}"
modflag=-mod=readonly
if [[ -n "$refresh" ]]; then export GOSUMDB=off; modflag=-mod=mod; fi

version="$(sed -n 's/^require github.com\/dapr\/dapr v\(.*\)$/\1/p' go.mod)"
start=$SECONDS
step() { printf '• [%4ss] %s\n' "$((SECONDS - start))" "$*"; }

command -v go >/dev/null || { echo "error: Go is not installed (Go >= 1.26 builds Dapr; or set AGENTIA_DAPR_BIN_DIR to a folder with daprd, placement and scheduler)" >&2; exit 1; }
step "Dapr $version with $(go version | cut -d' ' -f3); module downloads go through $(go env GOPROXY | cut -d, -f1)"

step "downloading Go modules (first build only; cached in $(go env GOMODCACHE))"
go mod download github.com/dapr/dapr
dapr_dir="$(go list -m -f '{{.Dir}}' github.com/dapr/dapr)"
[[ -f "$dapr_dir/cmd/daprd/components/zz_notag.go" ]] || { echo "error: the curated build needs updating for Dapr $version (cmd/daprd/components changed)" >&2; exit 1; }

# Build from a scratch copy of the upstream module whose component registry is swapped for
# ours; nothing else of upstream's code is touched.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step "preparing the curated source tree in $work"
cp -r "$dapr_dir" "$work/dapr"
chmod -R u+w "$work/dapr"
rm -f "$work/dapr/cmd/daprd/components/"*.go "$work/dapr/cmd/daprd/components/"*.go_disabled
cp curated/components.go "$work/dapr/cmd/daprd/components/components.go"
# components-contrib likewise; then our fixes to upstream bugs in either (patches/*.patch;
# each says what it fixes and why).
go mod download github.com/dapr/components-contrib
contrib_dir="$(go list -m -f '{{.Dir}}' github.com/dapr/components-contrib)"
cp -r "$contrib_dir" "$work/components-contrib"
chmod -R u+w "$work/components-contrib"
# A patch's name says which module it fixes: dapr-*.patch or components-contrib-*.patch.
for patch in "$(pwd)"/patches/*.patch; do
  name="$(basename "$patch")"
  case "$name" in
    dapr-*) module=dapr ;;
    components-contrib-*) module=components-contrib ;;
    *) echo "error: $name: a patch's name starts with the module it fixes" >&2; exit 1 ;;
  esac
  step "patching $module: $name"
  (cd "$work/$module" && git apply -p1 "$patch")
done
cp go.mod go.sum "$work/"
printf '\nreplace github.com/dapr/dapr => ./dapr\n' >> "$work/go.mod"
printf 'replace github.com/dapr/components-contrib => ./components-contrib\n' >> "$work/go.mod"
src="$(pwd)"
cd "$work"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$version -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$version -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=agentia-curated"
log="$work/build.log"
for bin in daprd placement scheduler sentry; do
  step "building $bin"
  go build $modflag -v -trimpath -ldflags "$ldflags" -o "$out/$bin" "github.com/dapr/dapr/cmd/$bin" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && step "  $bin: $(grep -vc '^go: downloading' "$log") packages compiled, $(grep -c '^go: downloading' "$log") modules downloaded so far"
  done
  if ! wait "$pid"; then
    tail -n 40 "$log" >&2
    echo "error: building $bin failed (Go output above)" >&2
    exit 1
  fi
  step "built $bin ($(du -h "$out/$bin" | cut -f1))"
done
if [[ -n "$refresh" ]]; then
  grep -v -e '^replace github.com/dapr/dapr => ./dapr$' \
    -e '^replace github.com/dapr/components-contrib => ./components-contrib$' "$work/go.mod" > "$src/go.mod"
  cp "$work/go.sum" "$src/go.sum"
  step "wrote go.mod and go.sum back to $src"
fi
echo "$version" > "$out/VERSION"
step "done: $("$out/daprd" --version) in $out"
