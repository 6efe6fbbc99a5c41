#!/usr/bin/env bash
# Static checks: Go (gofmt, go vet, staticcheck), the SAM template (cfn-lint) and the state machine definition
# (asl-validator, every definition). Run .ci/tools.sh first. Exits non-zero on the first failing check group, after printing it.
#
# cfn-lint: errors AND warnings fail the lint. The template is warning-free; a warning that is really wanted
# must be silenced where it occurs (Metadata: cfn-lint: config: ignore_checks on that resource), with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.6.1
status=0
step() { echo "== $*"; }

step gofmt
unformatted=$(find . -name '*.go' -not -path './node_modules/*' -not -path './.aws-sam/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"; echo "$unformatted"; status=1
fi

step go vet
go vet ./... || status=1

step staticcheck
go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./... || status=1

for tpl in template.yaml organization/security-account.yaml; do
	step "cfn-lint $tpl"
	cfn-lint "$tpl" || { echo "cfn-lint exit $? (2 = errors, 4 = warnings; both fail)"; status=1; }
done

# Each definition as Step Functions sees it after the template's DefinitionSubstitutions.
substituted=$(mktemp -d)
trap 'rm -rf "$substituted"' EXIT

# What a StackSet deploys (docs/organizations.md): template.yaml packaged (code and definitions in S3, as sam
# package writes them) and expanded without the SAM transform, which service-managed StackSets cannot run.
step "cfn-lint the StackSets template (organization/stackset-template.py)"
sed -E -e 's|^    CodeUri: \.$|    CodeUri: s3://artifacts/code.zip|' \
	-e 's|DefinitionUri: statemachine/(.*)$|DefinitionUri: s3://artifacts/\1|' template.yaml >"$substituted/packaged.yaml"
if python3 organization/stackset-template.py "$substituted/packaged.yaml" >"$substituted/stackset.json"; then
	cfn-lint "$substituted/stackset.json" || { echo "cfn-lint exit $? on the expanded template"; status=1; }
else
	status=1
fi
# Issue 16: the isolation's "Queue instance settings" uses ${Partition} and ${EvidenceQueueUrl}; stage 2 has its own
# definition.
for def in statemachine/isolation.asl.json statemachine/release.asl.json statemachine/evidence.asl.json; do
	step "asl-validator $def"
	out="$substituted/$(basename "$def")"
	sed -E -e 's/\$\{([A-Za-z0-9]+)FunctionArn\}/arn:aws:lambda:us-east-1:123456789012:function:ec2-isolation-\1/g' \
		-e 's/\$\{Partition\}/aws/g' \
		-e 's#\$\{EvidenceQueueUrl\}#https://sqs.us-east-1.amazonaws.com/123456789012/ec2-isolation-evidence#g' \
		"$def" >"$out"
	if grep -q '\${' "$out"; then
		echo "unsubstituted placeholders left:"; grep -o '\${[^}]*}' "$out" | sort -u; status=1
	fi
	node_modules/.bin/asl-validator --json-path "$out" || status=1
done

if [ "$status" -ne 0 ]; then
	echo "lint: FAILED"
	exit 1
fi
echo "lint: ok"
