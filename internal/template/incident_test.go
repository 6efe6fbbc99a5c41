package template

// Issue 7 in the template: the incident bucket, the release trigger, the stack parameters of the new steps, and
// the IAM write actions that revocation and restoration need.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// The incident record must survive: versioned (every version kept), encrypted at rest, never public, owned by the
// account (ACLs off), kept when the stack is deleted or the bucket replaced, reachable over TLS only, and no
// version deletable through the bucket's principals.
func TestIncidentBucketIsSafe(t *testing.T) {
	tpl := load(t)
	var buckets []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::S3::Bucket" {
			buckets = append(buckets, id)
		}
	}
	if !cmp.Equal(buckets, []string{"IncidentBucket"}) {
		t.Fatalf("buckets %v, want IncidentBucket only", buckets)
	}
	r := tpl.Resources["IncidentBucket"]
	if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
		t.Errorf("DeletionPolicy %q UpdateReplacePolicy %q, want Retain both: deleting the stack would delete the records", r.DeletionPolicy, r.UpdateReplacePolicy)
	}
	p := r.Properties
	if v, _ := p["VersioningConfiguration"].(map[string]any); v["Status"] != "Enabled" {
		t.Errorf("VersioningConfiguration = %v, want Status Enabled", p["VersioningConfiguration"])
	}
	enc, _ := p["BucketEncryption"].(map[string]any)
	rules, _ := enc["ServerSideEncryptionConfiguration"].([]any)
	algo := ""
	if len(rules) == 1 {
		def, _ := rules[0].(map[string]any)["ServerSideEncryptionByDefault"].(map[string]any)
		algo, _ = def["SSEAlgorithm"].(string)
	}
	if algo != "AES256" && algo != "aws:kms" {
		t.Errorf("BucketEncryption = %v, want default encryption (AES256 or aws:kms)", p["BucketEncryption"])
	}
	want := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
	if diff := cmp.Diff(want, p["PublicAccessBlockConfiguration"]); diff != "" {
		t.Errorf("PublicAccessBlockConfiguration (-want +got):\n%s", diff)
	}
	if !jsonEqual(p["OwnershipControls"], map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}}) {
		t.Errorf("OwnershipControls = %v, want BucketOwnerEnforced (ACLs disabled)", p["OwnershipControls"])
	}
	for _, forbidden := range []string{"AccessControl", "LifecycleConfiguration", "WebsiteConfiguration", "BucketName"} {
		if _, ok := p[forbidden]; ok {
			t.Errorf("IncidentBucket sets %s", forbidden)
		}
	}

	// The bucket policy: TLS only, on the bucket and its objects; no version can be deleted; nothing allowed.
	var tls, keep bool
	policies := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::S3::BucketPolicy" {
			continue
		}
		policies++
		if refOf(r.Properties["Bucket"]) != "IncidentBucket" {
			t.Errorf("bucket policy %s is for %v", id, r.Properties["Bucket"])
		}
		for i, st := range statementsOf(t, r.Properties, "PolicyDocument") {
			raw, _ := json.Marshal(st)
			res, _ := json.Marshal(st["Resource"])
			switch {
			case st["Effect"] != "Deny":
				t.Errorf("bucket policy %s statement %d allows: %s", id, i, raw)
			case st["Principal"] == "*" && slices.Equal(actionsOf(st), []string{"s3:*"}) &&
				strings.Contains(string(raw), `"Bool":{"aws:SecureTransport":"false"}`) &&
				strings.Contains(string(res), `{"Fn::GetAtt":["IncidentBucket","Arn"]}`) &&
				strings.Contains(string(res), `{"Fn::Sub":"${IncidentBucket.Arn}/*"}`):
				tls = true
			case st["Principal"] == "*" && slices.Equal(actionsOf(st), []string{"s3:DeleteObjectVersion"}) && st["Condition"] == nil:
				keep = true
			}
		}
	}
	if policies != 1 || !tls || !keep {
		t.Errorf("%d bucket policies; denies plain HTTP on bucket and objects: %v; denies deleting versions: %v", policies, tls, keep)
	}

	// Only the two incident functions touch the bucket, with no delete and no wildcard S3 action, on the records'
	// prefix (and ListBucket on the bucket, for 404 instead of 403 on a missing record).
	for role, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			for _, a := range st.Action {
				if !strings.HasPrefix(a, "s3:") {
					continue
				}
				// The reconciler reads a record (is the incident open?) before it starts a release; Preserve
				// evidence before stage 2's settings (is the incident still open?, issue 16).
				readsOnly := role == "ReconcileRole" || role == "PreserveEvidenceRole"
				if role != "RecordIncidentRole" && role != "ReadIncidentRecordRole" &&
					(!readsOnly || (a != "s3:GetObject" && a != "s3:ListBucket")) {
					t.Errorf("role %s may %s", role, a)
				}
				if strings.Contains(a, "Delete") || strings.Contains(a, "*") || strings.Contains(a, "Acl") || strings.Contains(a, "Policy") {
					t.Errorf("role %s may %s", role, a)
				}
				for _, r := range st.Resource {
					ok := (a == "s3:ListBucket" && jsonEqual(r, map[string]any{"Fn::GetAtt": []any{"IncidentBucket", "Arn"}})) ||
						(a != "s3:ListBucket" && subOf(r) == "${IncidentBucket.Arn}/incidents/*")
					if !ok {
						t.Errorf("role %s: %s on %v", role, a, r)
					}
				}
			}
		}
	}
	// The functions are given the bucket the stack creates.
	for _, id := range []string{"RecordIncidentFunction", "ReadIncidentRecordFunction", "PreserveEvidenceFunction"} {
		env, _ := tpl.Resources[id].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if refOf(vars["INCIDENT_BUCKET"]) != "IncidentBucket" {
			t.Errorf("%s INCIDENT_BUCKET = %v, want !Ref IncidentBucket", id, vars["INCIDENT_BUCKET"])
		}
	}
	if out := tpl.Outputs["IncidentBucketName"]; refOf(out["Value"]) != "IncidentBucket" {
		t.Errorf("output IncidentBucketName = %v", out)
	}
}

// The release rule has the isolation rule's shape with the release value: it fires when the key is set to the
// release value, and never on the isolation value, another tag, or another resource. It starts the release state
// machine with the whole event, retried for 24 hours, then dead-lettered.
func TestReleaseRulePattern(t *testing.T) {
	tpl := load(t)
	if d := tpl.Parameters["ReleaseTagValue"]["Default"]; d != "release" {
		t.Errorf("ReleaseTagValue default %v, want release", d)
	}
	if tpl.Parameters["ReleaseTagValue"]["AllowedPattern"] != tpl.Parameters["IsolationTagValue"]["AllowedPattern"] {
		t.Error("ReleaseTagValue is not checked like IsolationTagValue (it is put in the JSON pattern too)")
	}
	for _, kv := range [][3]string{{"Isolate", "true", "release"}, {"security:quarantine", "now please", "all clear"}} {
		key, isolate, release := kv[0], kv[1], kv[2]
		params := map[string]string{"IsolationTagKey": key, "IsolationTagValue": isolate, "ReleaseTagValue": release}
		pattern := renderRulePattern(t, tpl, "ReleaseRule", params)
		if diff := cmp.Diff(specPattern(key, release), pattern); diff != "" {
			t.Errorf("release pattern for %s=%s (-want +got):\n%s", key, release, diff)
		}
		isolation := renderRulePattern(t, tpl, "IsolationRule", params)
		for name, tc := range map[string]struct {
			event            map[string]any
			release, isolate bool
		}{
			"release value set":          {tagEvent("ec2", "instance", []string{key}, map[string]string{key: release}), true, false},
			"isolation value set":        {tagEvent("ec2", "instance", []string{key}, map[string]string{key: isolate}), false, true},
			"tag removed":                {tagEvent("ec2", "instance", []string{key}, map[string]string{"Name": "web-1"}), false, false},
			"other tag of a released":    {tagEvent("ec2", "instance", []string{"Name"}, map[string]string{key: release, "Name": "x"}), false, false},
			"release value in uppercase": {tagEvent("ec2", "instance", []string{key}, map[string]string{key: strings.ToUpper(release)}), false, false},
			"volume tagged":              {tagEvent("ec2", "volume", []string{key}, map[string]string{key: release}), false, false},
		} {
			if got := matches(pattern, tc.event); got != tc.release {
				t.Errorf("%s: release rule fires %v, want %v", name, got, tc.release)
			}
			if got := matches(isolation, tc.event); got != tc.isolate {
				t.Errorf("%s: isolation rule fires %v, want %v", name, got, tc.isolate)
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "events", "release.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if !matches(renderRulePattern(t, tpl, "ReleaseRule", map[string]string{"IsolationTagKey": "Isolate", "ReleaseTagValue": "release"}), ev) {
		t.Error("events/release.json does not match the release rule with the stack defaults")
	}

	targets, _ := tpl.Resources["ReleaseRule"].Properties["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("release rule targets = %v, want the release state machine only", targets)
	}
	target, _ := targets[0].(map[string]any)
	if !cmp.Equal(target["Arn"], map[string]any{"Ref": "ReleaseStateMachine"}) {
		t.Errorf("release rule target = %v", target["Arn"])
	}
	if _, ok := target["Input"]; ok {
		t.Error("the target rewrites the input; the execution input must be the whole event")
	}
	if retry, _ := target["RetryPolicy"].(map[string]any); retry["MaximumEventAgeInSeconds"] != 86400 {
		t.Errorf("RetryPolicy = %v", target["RetryPolicy"])
	}
	if dlq, _ := target["DeadLetterConfig"].(map[string]any); !cmp.Equal(dlq["Arn"], map[string]any{"Fn::GetAtt": []any{"DeadLetterQueue", "Arn"}}) {
		t.Errorf("DeadLetterConfig = %v", target["DeadLetterConfig"])
	}
	if out := tpl.Outputs["ReleaseStateMachineArn"]; refOf(out["Value"]) != "ReleaseStateMachine" {
		t.Errorf("output ReleaseStateMachineArn = %v", out)
	}
	// Its executions are watched like the isolation's.
	watched := map[string]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		dims, _ := r.Properties["Dimensions"].([]any)
		for _, d := range dims {
			dm, _ := d.(map[string]any)
			if refOf(dm["Value"]) == "ReleaseStateMachine" || refOf(dm["Value"]) == "ReleaseRule" {
				watched[r.Properties["MetricName"].(string)] = true
			}
		}
	}
	if diff := cmp.Diff(map[string]bool{"ExecutionsFailed": true, "ExecutionsTimedOut": true, "ExecutionsAborted": true, "FailedInvocations": true}, watched); diff != "" {
		t.Errorf("release alarms (-want +got):\n%s", diff)
	}
}

// One tag value cannot both isolate and release: a template Rule refuses the deployment.
func TestReleaseValueMustDifferFromIsolationValue(t *testing.T) {
	tpl := load(t)
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{
		map[string]any{"Ref": "ReleaseTagValue"}, map[string]any{"Ref": "IsolationTagValue"}}}}}
	found := false
	for _, rule := range tpl.Rules {
		assertions, _ := rule["Assertions"].([]any)
		for _, a := range assertions {
			am, _ := a.(map[string]any)
			if jsonEqual(am["Assert"], want) && am["AssertDescription"] != nil {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no Rule asserts ReleaseTagValue != IsolationTagValue: %v", tpl.Rules)
	}
}

// The settings of the new steps: each a stack parameter, true by default, wired to its function.
func TestEvidenceAndCredentialParameters(t *testing.T) {
	tpl := load(t)
	wiring := map[string][2]string{
		"RevokeCredentials":           {"RevokeCredentialsFunction", "REVOKE_CREDENTIALS"},
		"EnableTerminationProtection": {"PreserveEvidenceFunction", "ENABLE_TERMINATION_PROTECTION"},
		"StopOnShutdown":              {"PreserveEvidenceFunction", "STOP_ON_SHUTDOWN"},
		"KeepVolumes":                 {"PreserveEvidenceFunction", "KEEP_VOLUMES"},
		"DetachFromAutoScaling":       {"PreserveEvidenceFunction", "DETACH_AUTO_SCALING"},
		"DeregisterFromTargetGroups":  {"PreserveEvidenceFunction", "DEREGISTER_TARGETS"},
	}
	for param, w := range wiring {
		p := tpl.Parameters[param]
		if p["Default"] != "true" || !cmp.Equal(p["AllowedValues"], []any{"true", "false"}) {
			t.Errorf("parameter %s: Default %v AllowedValues %v, want \"true\" of [true false]", param, p["Default"], p["AllowedValues"])
		}
		env, _ := tpl.Resources[w[0]].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if refOf(vars[w[1]]) != param {
			t.Errorf("%s %s = %v, want !Ref %s", w[0], w[1], vars[w[1]], param)
		}
	}
	if d := tpl.Parameters["RevocableRoles"]["Default"]; d != "*" {
		t.Errorf("RevocableRoles default %v, want *", d)
	}
	for _, id := range []string{"RevokeCredentialsFunction", "LiftCredentialRevocationFunction"} {
		env, _ := tpl.Resources[id].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if refOf(vars["REVOCABLE_ROLES"]) != "RevocableRoles" {
			t.Errorf("%s REVOCABLE_ROLES = %v", id, vars["REVOCABLE_ROLES"])
		}
	}
	env, _ := tpl.Resources["ReadIncidentRecordFunction"].Properties["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	for k, param := range map[string]string{"TAG_KEY": "IsolationTagKey", "RELEASE_TAG_VALUE": "ReleaseTagValue", "ISOLATION_GROUP_NAME": "IsolationGroupName"} {
		if refOf(vars[k]) != param {
			t.Errorf("ReadIncidentRecordFunction %s = %v, want !Ref %s", k, vars[k], param)
		}
	}
	// Every parameter is in a parameter group of the console form.
	b, _ := json.Marshal(tpl.Metadata["AWS::CloudFormation::Interface"])
	for name := range tpl.Parameters {
		if !strings.Contains(string(b), `"`+name+`"`) {
			t.Errorf("parameter %s is in no ParameterGroup", name)
		}
	}
}

// Revocation and restoration write IAM: only the three roles that must, only on the roles the stack may touch
// (role/${RevocableRoles}), and each of them explicitly denied the stack's own roles (a function that could put a
// policy on its own role, or pass an admin role of the stack, could grant itself anything).
func TestIAMWritesAreConfinedToRevocableRoles(t *testing.T) {
	tpl := load(t)
	writers := map[string]string{
		"RevokeCredentialsRole":        "iam:PutRolePolicy",
		"LiftCredentialRevocationRole": "iam:PutRolePolicy", // replaces the revoking policy (issue 13)
		"RestoreInstanceProfileRole":   "iam:PassRole",
	}
	revocable := map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RevocableRoles}"}
	// The stack's roles are told apart by their path (issue 13, item 11), not by their generated names, which
	// CloudFormation truncates for a long stack name (StackSets' StackSet-<set>-<uuid> names are long).
	stackRoles := map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*"}
	for role, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			for _, a := range st.Action {
				if a != "iam:PutRolePolicy" && a != "iam:DeleteRolePolicy" && a != "iam:PassRole" && !strings.HasPrefix(a, "iam:Attach") &&
					!strings.HasPrefix(a, "iam:Create") && !strings.HasPrefix(a, "iam:Update") {
					continue
				}
				if (role == "AttachIsolationProfileRole" || role == "VerifyContainmentRole") && a == "iam:PassRole" {
					continue // the isolation role only (TestIsolationRoleDeniesEverything)
				}
				if writers[role] != a {
					t.Errorf("role %s may %s", role, a)
					continue
				}
				if !jsonEqual(st.Resource, []any{revocable}) {
					t.Errorf("role %s: %s on %v, want only role/${RevocableRoles}", role, a, st.Resource)
				}
				if a == "iam:PassRole" && !slices.Equal(condition(st, "StringEquals", "iam:PassedToService"), []string{"ec2.amazonaws.com"}) {
					t.Errorf("role %s passes roles to any service", role)
				}
			}
		}
	}
	for role, action := range writers {
		policies, err := tpl.RolePolicies(role)
		if err != nil {
			t.Fatal(err)
		}
		denied := false
		for _, st := range policies[StepPolicyName] {
			if st.Effect == "Deny" && slices.Contains(st.Action, action) && jsonEqual(st.Resource, []any{stackRoles}) && st.Condition == nil {
				denied = true
			}
		}
		if !denied {
			t.Errorf("role %s is not denied %s on the stack's own roles", role, action)
		}
	}
	if p := tpl.Parameters["RevocableRoles"]["AllowedPattern"]; p == nil {
		t.Error("RevocableRoles has no AllowedPattern: any text would become part of the IAM Resource")
	}
}

// internal/stackenv is the functions' environment outside Lambda (simulate, bench, tests): its defaults are the
// stack's, variable by variable, and it has every variable a function reads from a parameter.
func TestStackenvDefaultsAreTheTemplates(t *testing.T) {
	tpl := load(t)
	defaults := stackenv.Defaults()
	seen := map[string]bool{}
	for _, f := range tpl.Functions() {
		env, _ := tpl.Resources[f.LogicalID].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			seen[k] = true
			param := refOf(v)
			p, isParam := tpl.Parameters[param]
			if !isParam || k == "LOG_LEVEL" {
				continue // a resource of the stack (topic, bucket, profile), or the log level
			}
			want, ok := defaults[k]
			if !ok {
				t.Errorf("%s reads %s (parameter %s), which stackenv.Defaults lacks", f.LogicalID, k, param)
				continue
			}
			if got := fmt.Sprint(p["Default"]); got != want {
				t.Errorf("%s: parameter %s defaults to %q, stackenv.Defaults to %q", k, param, got, want)
			}
		}
	}
	for k := range defaults {
		if !seen[k] {
			t.Errorf("stackenv.Defaults has %s, which no function of the template reads", k)
		}
	}
}
