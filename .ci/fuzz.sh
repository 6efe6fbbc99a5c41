#!/usr/bin/env bash
# Runs every fuzz target for a bounded number of inputs, one after the other (each target uses every core).
#   FUZZTIME    inputs per target (default 30000x: about 5-12 s each here)
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" at the deadline when a worker is mid-input (golang/go#75804, fixed in Go 1.27). Seen in our
# CI on FuzzDisassociate, with no failing input.
#   FUZZMIN     time to minimise a failing input (default 5s)
# A failing input is written to the package's testdata/fuzz/<Target>/ and makes this script fail; commit it
# with the fix: `go test ./...` then replays it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-30000x}"
fuzzmin="${FUZZMIN:-5s}"

# package: targets
targets=(
	"./internal/validate FuzzEvent"
	"./internal/profile FuzzDisassociate FuzzAttach"
	"./internal/secgroup FuzzEnsure FuzzApply"
	"./internal/snapshot FuzzSnapshot"
	"./internal/notify FuzzNotify"
	"./internal/verify FuzzVerify"
)

start=$(date +%s)
n=0
for line in "${targets[@]}"; do
	read -r pkg names <<<"$line"
	for name in $names; do
		echo "== fuzz $pkg $name ($fuzztime)"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$fuzzmin" "$pkg"
		n=$((n + 1))
	done
done

# Every Fuzz function of the repository is in the list above (a new target must not be forgotten).
listed=$(printf '%s\n' "${targets[@]}" | cut -d' ' -f2- | tr ' ' '\n' | sort)
found=$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' --include='*_test.go' internal cmd | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | sort)
if [ "$listed" != "$found" ]; then
	echo "fuzz targets in the code and in .ci/fuzz.sh differ:"
	diff <(echo "$listed") <(echo "$found") || true
	exit 1
fi
echo "fuzz: $n targets, $fuzztime each, nothing found ($(($(date +%s) - start))s)"
