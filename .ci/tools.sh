#!/usr/bin/env bash
# Installs, at pinned versions, the tools CI needs beyond Go, and checks the preinstalled ones.
#   npm (package.json / package-lock.json, exact versions): asl-validator 4.0.0, aws-local-stepfunctions 3.0.0
#   Go module cache: staticcheck (honnef.co/go/tools v0.6.1 = release 2025.1.1)
#   preinstalled, checked only: go >= 1.26, cfn-lint, moto
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.6.1

fail() { echo "tools.sh: $*" >&2; exit 1; }
pkgver() { node -p "JSON.parse(require('fs').readFileSync('node_modules/$1/package.json', 'utf8')).version"; }

command -v go >/dev/null || fail "go is not installed"
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "${go_minor:-0}" -ge 26 ] || fail "Go 1.26 or newer needed, found $(go env GOVERSION)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "tools.sh: installing node and npm (Debian packages)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq nodejs npm >/dev/null
fi
# Exactly the locked versions, into ./node_modules.
npm ci --no-audit --no-fund --loglevel=error
[ -x node_modules/.bin/asl-validator ] || fail "asl-validator missing after npm ci"

command -v cfn-lint >/dev/null || fail "cfn-lint is not installed (expected preinstalled)"
python3 -c 'import moto' 2>/dev/null || fail "python moto is not installed (expected preinstalled)"

# Fill the module cache so that lint runs staticcheck offline-fast.
go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" -version >/dev/null

echo "tools: $(go env GOVERSION), node $(node --version), asl-validator $(pkgver asl-validator), aws-local-stepfunctions $(pkgver aws-local-stepfunctions), $(cfn-lint --version), moto $(python3 -c 'import moto; print(moto.__version__)'), staticcheck ${STATICCHECK_VERSION}"
