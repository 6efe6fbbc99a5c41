#!/usr/bin/env bash
# The isolation against an emulator written by others: moto's server mode (moto_server, moto 5.2.1, preinstalled).
#   1. start moto_server on a free loopback port;
#   2. seed an account through the Go SDK (internal/moto/cmd/motoci seed): two VPCs, a subnet and a group in each,
#      an instance with an ENI in both VPCs, an instance profile, two EBS volumes, the isolation profile, the
#      notification topic with an SQS queue subscribed, and an `ec2-isolation` stack with the template's outputs;
#   3. `isolation preflight` and `isolation run --dry-run` against it: every check passes, nothing changes;
#   4. `isolation run --yes` against it, configured only as an engineer's shell would be (AWS_ENDPOINT_URL,
#      AWS_REGION, credentials), the names read from the stack's outputs;
#   5. check the final state through the SDK (motoci verify), including the notification read back from SQS;
#   6. `isolation record` (the incident open), `isolation release --yes`, `isolation record` (released).
# Where moto differs from AWS: docs/moto.md.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.1
t0=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - t0) / 1000000)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

command -v moto_server >/dev/null || { echo "moto.sh: moto_server is not installed (moto[server] $MOTO_VERSION expected)"; exit 1; }
have=$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo unknown)
[ "$have" = "$MOTO_VERSION" ] || echo "moto.sh: warning: moto $have, docs/moto.md was written against $MOTO_VERSION"

work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/motoci" ./internal/moto/cmd/motoci
go build -o "$work/isolation" ./cmd/isolation
echo "built the helpers ($(elapsed))"

# A free port, and moto on it; retried if another process takes the port first.
for attempt in 1 2 3; do
	port=$("$work/motoci" port)
	moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
	pid=$!
	"$work/motoci" wait "$port" "$pid" && break
	echo "moto_server did not start on port $port (attempt $attempt):"; tail -5 "$work/moto.log"
	kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
done
[ -n "$pid" ] || { echo "moto.sh: moto_server did not start"; exit 1; }
echo "moto $have listening on 127.0.0.1:$port ($(elapsed))"

# The standard AWS configuration, as an engineer's shell has it; nothing from ~/.aws.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN

eval "$("$work/motoci" seed "$work/seeded.json")"
echo "seeded: instance $instance, topic $topic ($(elapsed))"

echo; echo "-- isolation preflight --instance $instance"
"$work/isolation" preflight --instance "$instance" | tee "$work/preflight.txt"
grep -q " 0 fail" "$work/preflight.txt"

echo; echo "-- isolation run --instance $instance --dry-run"
"$work/isolation" run --instance "$instance" --dry-run >"$work/dry-run.txt" || { cat "$work/dry-run.txt"; exit 1; }
grep -q "Dry run: nothing was changed." "$work/dry-run.txt"
echo "dry run: plan and checks printed, exit 0 ($(elapsed))"

echo; echo "-- isolation run --instance $instance --yes"
"$work/isolation" run --instance "$instance" --yes | tee "$work/run.txt"
grep -q "Isolated: yes" "$work/run.txt"

echo; echo "-- the account, read back through the SDK"
"$work/motoci" verify "$work/seeded.json"

# Issue 15: the incident record the run wrote, the break-glass release, the record closed.
echo; echo "-- isolation record --instance $instance"
"$work/isolation" record --instance "$instance" | tee "$work/record.txt"
grep -q "OPEN (the instance is isolated)" "$work/record.txt"

echo; echo "-- isolation release --instance $instance --yes"
"$work/isolation" release --instance "$instance" --yes >"$work/release.txt" || { cat "$work/release.txt"; exit 1; }
grep -q "SUCCEEDED" "$work/release.txt"
"$work/isolation" record --instance "$instance" >"$work/record.txt"
grep -q "released " "$work/record.txt"
echo "released; the record says so ($(elapsed))"

echo; echo "moto: preflight, dry run, run, verification, record and release passed in $(elapsed)"
