# ec2-isolation: build, test and lint.
#
# `sam build` (BuildMethod: makefile) runs `make build-<LogicalId>` with ARTIFACTS_DIR set, once per function of
# template.yaml; each target writes one static linux/arm64 binary named bootstrap (runtime provided.al2023).
# `make build` does the same for every function into .aws-sam/build/<LogicalId>/, as sam build would.

GO ?= go
# Pinned linters (the Go module proxy serves this staticcheck release: v0.8.2 = 2026.2.2).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_BUILD := $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"
BUILD_DIR := $(CURDIR)/.aws-sam/build

# LogicalId:directory under functions/, for every function of template.yaml.
FUNCTIONS := \
	ValidateAndRecordFunction:validate-and-record \
	DisassociateProfileFunction:disassociate-profile \
	AttachIsolationProfileFunction:attach-isolation-profile \
	EnsureSecurityGroupFunction:ensure-security-group \
	ApplySecurityGroupFunction:apply-security-group \
	SnapshotVolumesFunction:snapshot-volumes \
	NotifyFunction:notify \
	RecordIncidentFunction:record-incident \
	RevokeCredentialsFunction:revoke-credentials \
	PreserveEvidenceFunction:preserve-evidence \
	VerifyContainmentFunction:verify-containment \
	ReadIncidentRecordFunction:read-incident-record \
	RestoreSecurityGroupsFunction:restore-security-groups \
	RestoreInstanceProfileFunction:restore-instance-profile \
	LiftCredentialRevocationFunction:lift-credential-revocation \
	RestoreEvidenceSettingsFunction:restore-evidence-settings \
	ReconcileFunction:reconcile \
	AdmissionStarterFunction:admission-starter

fn_id = $(word 1,$(subst :, ,$(1)))
fn_dir = $(word 2,$(subst :, ,$(1)))
IDS := $(foreach f,$(FUNCTIONS),$(call fn_id,$(f)))

.PHONY: all build check-build test test-asl lint tools clean $(addprefix build-,$(IDS))

all: build check-build

# One build-<LogicalId> target per function (what sam build calls).
define BUILD_TARGET
build-$(call fn_id,$(1)):
	@test -n "$$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it; or use make build)" >&2; exit 1; }
	$$(LAMBDA_ENV) $$(LAMBDA_BUILD) -o "$$(ARTIFACTS_DIR)/bootstrap" ./functions/$(call fn_dir,$(1))
endef
$(foreach f,$(FUNCTIONS),$(eval $(call BUILD_TARGET,$(f))))

build:
	@set -e; for id in $(IDS); do \
		mkdir -p "$(BUILD_DIR)/$$id"; \
		$(MAKE) --no-print-directory build-$$id ARTIFACTS_DIR="$(BUILD_DIR)/$$id"; \
	done

# Every function of template.yaml has .aws-sam/build/<LogicalId>/bootstrap, a static linux/arm64 ELF executable.
check-build:
	$(GO) run ./internal/template/checkbuild -template template.yaml -dir "$(BUILD_DIR)"

test:
	$(GO) test ./...

# The state machines' data flow, failure markers and redrive resumption, in aws-local-stepfunctions
# (needs `npm ci`, see .ci/tools.sh).
test-asl:
	node --test statemachine/

lint:
	bash .ci/lint.sh

tools:
	bash .ci/tools.sh

clean:
	rm -rf .aws-sam
