package template

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const root = "../.."

func load(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// The step functions: logical id -> directory under functions/ (the Makefile and sam build use the ids).
var wantFunctions = map[string]string{
	"ValidateAndRecordFunction":        "validate-and-record",
	"DisassociateProfileFunction":      "disassociate-profile",
	"AttachIsolationProfileFunction":   "attach-isolation-profile",
	"EnsureSecurityGroupFunction":      "ensure-security-group",
	"ApplySecurityGroupFunction":       "apply-security-group",
	"SnapshotVolumesFunction":          "snapshot-volumes",
	"NotifyFunction":                   "notify",
	"RecordIncidentFunction":           "record-incident",
	"RevokeCredentialsFunction":        "revoke-credentials",
	"PreserveEvidenceFunction":         "preserve-evidence",
	"VerifyContainmentFunction":        "verify-containment",
	"ReadIncidentRecordFunction":       "read-incident-record",
	"RestoreSecurityGroupsFunction":    "restore-security-groups",
	"RestoreInstanceProfileFunction":   "restore-instance-profile",
	"LiftCredentialRevocationFunction": "lift-credential-revocation",
	"RestoreEvidenceSettingsFunction":  "restore-evidence-settings",
	"ReconcileFunction":                "reconcile",
	"AdmissionStarterFunction":         "admission-starter",
}

// The state machines: each one's definition file, the functions its tasks run, and its other substitutions. The
// isolation's functions reserve FunctionConcurrency; the release-only ones do not.
var stateMachines = map[string]struct {
	definition string
	functions  []string
	others     map[string]any
}{
	"IsolationStateMachine": {"statemachine/isolation.asl.json", []string{"ApplySecurityGroupFunction",
		"AttachIsolationProfileFunction", "DisassociateProfileFunction", "EnsureSecurityGroupFunction", "NotifyFunction",
		"PreserveEvidenceFunction", "RecordIncidentFunction", "RevokeCredentialsFunction", "SnapshotVolumesFunction",
		"ValidateAndRecordFunction", "VerifyContainmentFunction"},
		// "Queue instance settings" (issue 16): arn:${Partition}:states:::sqs:sendMessage to ${EvidenceQueueUrl}.
		map[string]any{"Partition": map[string]any{"Ref": "AWS::Partition"}, "EvidenceQueueUrl": map[string]any{"Ref": "EvidenceQueue"}}},
	"ReleaseStateMachine": {"statemachine/release.asl.json", []string{"LiftCredentialRevocationFunction",
		"NotifyFunction", "ReadIncidentRecordFunction", "RecordIncidentFunction", "RestoreEvidenceSettingsFunction",
		"RestoreInstanceProfileFunction", "RestoreSecurityGroupsFunction"}, nil},
	// Stage 2 (issue 16): the instance settings, and the failure notification.
	"EvidenceStateMachine": {"statemachine/evidence.asl.json", []string{"NotifyFunction", "PreserveEvidenceFunction"}, nil},
}

// awaitingDefinition are substitutions template.yaml passes that a definition of another slice does not use yet
// (state machine/substitution -> why). Logged, not failed; the test fails once the definition uses one: then the
// entry must go.
var awaitingDefinition = map[string]string{}

// isolationFunctions: the functions the isolation workflow runs (logical ids).
func isolationFunctions() map[string]bool {
	out := map[string]bool{}
	for _, f := range stateMachines["IsolationStateMachine"].functions {
		out[f] = true
	}
	return out
}

func TestParseShortForms(t *testing.T) {
	src := `
Resources:
  R:
    Type: AWS::X::Y
    Properties:
      A: !Ref P
      B: !GetAtt Res.Arn
      C: !Sub "x-${P}"
      D: !If [Cond, !Ref AWS::NoValue, 3]
      E: !GetAtt [Res, Name]
      F: !Join ["", [a, !Ref P]]
      G: 5
      H: "true"
      I: true
`
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"A": map[string]any{"Ref": "P"},
		"B": map[string]any{"Fn::GetAtt": []any{"Res", "Arn"}},
		"C": map[string]any{"Fn::Sub": "x-${P}"},
		"D": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "AWS::NoValue"}, 3}},
		"E": map[string]any{"Fn::GetAtt": []any{"Res", "Name"}},
		"F": map[string]any{"Fn::Join": []any{"", []any{"a", map[string]any{"Ref": "P"}}}},
		"G": 5,
		"H": "true",
		"I": true,
	}
	if diff := cmp.Diff(want, tpl.Resources["R"].Properties); diff != "" {
		t.Errorf("decoded properties (-want +got):\n%s", diff)
	}
	if _, err := Parse([]byte("Resources:\n  R:\n    Type: T\n    Properties:\n      A: !GetAtt NoDot\n")); err == nil {
		t.Error("!GetAtt without an attribute was accepted")
	}
}

func TestFunctionDir(t *testing.T) {
	for id, dir := range wantFunctions {
		if got := FunctionDir(id); got != dir {
			t.Errorf("FunctionDir(%s) = %q, want %q", id, got, dir)
		}
	}
}

func TestFunctionsAreTheSteps(t *testing.T) {
	tpl := load(t)
	got := map[string]string{}
	for _, f := range tpl.Functions() {
		got[f.LogicalID] = f.Dir
	}
	if diff := cmp.Diff(wantFunctions, got); diff != "" {
		t.Fatalf("functions (-want +got):\n%s", diff)
	}
	for _, dir := range got {
		if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
			t.Errorf("function directory: %v", err)
		}
	}
	// The Makefile has a build target per function (sam build's BuildMethod makefile calls build-<LogicalId>).
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for id, dir := range wantFunctions {
		if !strings.Contains(string(mk), id+":"+dir) {
			t.Errorf("Makefile FUNCTIONS lacks %s:%s", id, dir)
		}
	}
}

func TestFunctionSettings(t *testing.T) {
	tpl := load(t)
	globals := tpl.Globals["Function"]
	prop := func(r Resource, key string) any {
		if v, ok := r.Properties[key]; ok {
			return v
		}
		return globals[key]
	}
	for id := range wantFunctions {
		r := tpl.Resources[id]
		if got := prop(r, "Runtime"); got != "provided.al2023" {
			t.Errorf("%s Runtime = %v", id, got)
		}
		if got := prop(r, "Handler"); got != "bootstrap" {
			t.Errorf("%s Handler = %v", id, got)
		}
		if got := prop(r, "Architectures"); !cmp.Equal(got, []any{"arm64"}) {
			t.Errorf("%s Architectures = %v", id, got)
		}
		if got := r.Metadata["BuildMethod"]; got != "makefile" {
			t.Errorf("%s Metadata.BuildMethod = %v", id, got)
		}
		if mem, ok := prop(r, "MemorySize").(int); !ok || mem < 128 || mem > 1024 {
			t.Errorf("%s MemorySize = %v, want 128..1024", id, prop(r, "MemorySize"))
		}
		if reserved := prop(r, "ReservedConcurrentExecutions") != nil; reserved != isolationFunctions()[id] {
			t.Errorf("%s ReservedConcurrentExecutions set: %v; want it on the isolation workflow's functions only", id, reserved)
		}
		lg, ok := r.Properties["LoggingConfig"].(map[string]any)
		if !ok {
			t.Errorf("%s has no LoggingConfig", id)
			continue
		}
		checkLogGroup(t, tpl, id, lg["LogGroup"])
	}
}

// checkLogGroup: ref is {"Ref": X}, X an AWS::Logs::LogGroup with a retention.
func checkLogGroup(t *testing.T, tpl *Template, owner string, ref any) {
	t.Helper()
	m, _ := ref.(map[string]any)
	id, _ := m["Ref"].(string)
	lg, ok := tpl.Resources[id]
	if !ok || lg.Type != "AWS::Logs::LogGroup" {
		t.Errorf("%s logs to %v, not to a log group of the template", owner, ref)
		return
	}
	if lg.Properties["RetentionInDays"] == nil {
		t.Errorf("%s's log group %s has no RetentionInDays", owner, id)
	}
}

func TestTimeoutsAreBoundedAndShorterThanTheTasks(t *testing.T) {
	tpl := load(t)
	// Task TimeoutSeconds by function substitution name, over both definitions.
	taskTimeouts := map[string][]int{}
	for _, sm := range stateMachines {
		for _, task := range loadASL(t, sm.definition).tasks() {
			name := strings.TrimSuffix(strings.TrimPrefix(task.Resource, "${"), "Arn}")
			taskTimeouts[name] = append(taskTimeouts[name], task.TimeoutSeconds)
		}
	}
	for id := range wantFunctions {
		r := tpl.Resources[id]
		timeout, ok := r.Properties["Timeout"].(int)
		if !ok {
			timeout, ok = tpl.Globals["Function"]["Timeout"].(int)
		}
		if !ok || timeout < 1 || timeout > 120 {
			t.Errorf("%s Timeout = %v, want a number of seconds in 1..120", id, r.Properties["Timeout"])
			continue
		}
		// The reconciler runs on a schedule, the admission starter from its queue.
		if len(taskTimeouts[id]) == 0 && id != "ReconcileFunction" && id != "AdmissionStarterFunction" {
			t.Errorf("no task of the state machine runs %s", id)
		}
		for _, ts := range taskTimeouts[id] {
			if ts <= timeout {
				t.Errorf("a task running %s has TimeoutSeconds %d, not more than the function's Timeout %d: the task would time out before the function reports its own error", id, ts, timeout)
			}
		}
	}
}

func TestEachFunctionHasItsOwnRole(t *testing.T) {
	tpl := load(t)
	seen := map[string]string{}
	for _, f := range tpl.Functions() {
		r := tpl.Resources[f.LogicalID]
		if _, ok := r.Properties["Policies"]; ok {
			t.Errorf("%s has SAM Policies; its permissions must all be in its own role", f.LogicalID)
		}
		if f.Role == "" {
			t.Errorf("%s has no Role: !GetAtt <role>.Arn", f.LogicalID)
			continue
		}
		if other, dup := seen[f.Role]; dup {
			t.Errorf("%s and %s share role %s", f.LogicalID, other, f.Role)
		}
		seen[f.Role] = f.LogicalID
		role, ok := tpl.Resources[f.Role]
		if !ok || role.Type != "AWS::IAM::Role" {
			t.Errorf("%s: role %s is not an AWS::IAM::Role of the template", f.LogicalID, f.Role)
			continue
		}
		if _, ok := role.Properties["ManagedPolicyArns"]; ok {
			t.Errorf("role %s has managed policies", f.Role)
		}
		trust, _ := role.Properties["AssumeRolePolicyDocument"].(map[string]any)
		stmts, err := Statements(trust)
		if err != nil || len(stmts) != 1 {
			t.Errorf("role %s: trust policy: %v %v", f.Role, stmts, err)
			continue
		}
		trustRaw, _ := json.Marshal(trust)
		if !strings.Contains(string(trustRaw), `"Service":"lambda.amazonaws.com"`) {
			t.Errorf("role %s is not assumable by Lambda only: %s", f.Role, trustRaw)
		}
		policies, err := tpl.RolePolicies(f.Role)
		if err != nil {
			t.Error(err)
			continue
		}
		want := []string{StepPolicyName, "logs"}
		if f.Dir == "admission-starter" { // and what Lambda's poller of its queue calls (TestAdmissionStarterIsDeployed)
			want = []string{StepPolicyName, "event-source", "logs"}
		}
		if got := slices.Sorted(maps.Keys(policies)); !cmp.Equal(got, want) {
			t.Errorf("role %s policies %v, want %v", f.Role, got, want)
		}
		logs := policies["logs"]
		if len(logs) != 1 || !cmp.Equal(logs[0].Action, []string{"logs:CreateLogStream", "logs:PutLogEvents"}) {
			t.Errorf("role %s logs policy = %+v", f.Role, logs)
		} else {
			lg, _ := GetAttResource(logs[0].Resource[0], "Arn")
			checkLogGroup(t, tpl, f.Role, map[string]any{"Ref": lg})
		}
	}
}

// The actions each step's code calls (the table of the task; the simulator's recorded calls must be a subset).
var wantActions = map[string][]string{
	"validate-and-record": {"ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstances",
		"ec2:DescribeSecurityGroups"},
	"disassociate-profile": {"ec2:DescribeIamInstanceProfileAssociations", "ec2:DisassociateIamInstanceProfile"},
	"attach-isolation-profile": {"ec2:AssociateIamInstanceProfile", "ec2:DescribeIamInstanceProfileAssociations",
		"ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole"},
	"ensure-security-group": {"ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
		"ec2:CreateSecurityGroup", "ec2:CreateTags", "ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupEgress",
		"ec2:RevokeSecurityGroupIngress"},
	"apply-security-group": {"ec2:DescribeNetworkInterfaces", "ec2:ModifyNetworkInterfaceAttribute"},
	"snapshot-volumes":     {"ec2:CreateSnapshots", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:DescribeSnapshots"},
	"notify":               {"sns:Publish"},
	"record-incident": {"autoscaling:DescribeAutoScalingInstances",
		"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth", "s3:GetObject",
		"s3:ListBucket", "s3:PutObject"},
	"revoke-credentials": {"iam:GetInstanceProfile", "iam:GetRolePolicy", "iam:PutRolePolicy"},
	// Stage 2 (issue 16) reads the incident record first: a job of a released instance changes nothing.
	"preserve-evidence": {"autoscaling:DescribeAutoScalingInstances", "autoscaling:DetachInstances",
		"ec2:DescribeInstanceAttribute", "ec2:ModifyInstanceAttribute", "elasticloadbalancing:DeregisterTargets",
		"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth", "s3:GetObject",
		"s3:ListBucket"},
	// The read-back, and containing again what it finds open (Apply's, Ensure's and Attach's calls, never
	// AuthorizeSecurityGroup*: it only removes rules).
	"verify-containment": {"ec2:AssociateIamInstanceProfile", "ec2:CreateSecurityGroup", "ec2:CreateTags",
		"ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
		"ec2:DisassociateIamInstanceProfile", "ec2:ModifyNetworkInterfaceAttribute",
		"ec2:ReplaceIamInstanceProfileAssociation", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
		"iam:PassRole"},
	"read-incident-record":    {"ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "s3:GetObject", "s3:ListBucket"},
	"restore-security-groups": {"ec2:DescribeNetworkInterfaces", "ec2:ModifyNetworkInterfaceAttribute"},
	"restore-instance-profile": {"ec2:AssociateIamInstanceProfile", "ec2:DescribeIamInstanceProfileAssociations",
		"ec2:DisassociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole"},
	"lift-credential-revocation": {"iam:GetInstanceProfile", "iam:GetRolePolicy", "iam:PutRolePolicy"},
	"restore-evidence-settings": {"autoscaling:AttachInstances", "autoscaling:DescribeAutoScalingGroups",
		"autoscaling:DescribeAutoScalingInstances", "autoscaling:SetInstanceProtection", "ec2:DescribeInstanceAttribute",
		"ec2:ModifyInstanceAttribute", "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:RegisterTargets"},
	// The reconciler (issue 14): the batch read-back, Ensure's calls (groups kept ready), the executions of the two
	// state machines, the incident record, its lease (s3:PutObject).
	"reconcile": {"ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup",
		"ec2:CreateTags", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces",
		"ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "s3:GetObject",
		"s3:ListBucket", "s3:PutObject", "states:DescribeExecution", "states:ListExecutions", "states:StartExecution"},
	// The admission starter (issue 16): counts the running isolations (evidence executions), starts the next.
	"admission-starter": {"states:ListExecutions", "states:StartExecution"},
}

func TestFunctionActions(t *testing.T) {
	if diff := cmp.Diff(wantActions, load(t).FunctionActions()); diff != "" {
		t.Errorf("actions per function (-want +got):\n%s", diff)
	}
}

// Resource "*" only for actions without resource-level permissions (Describe*, log delivery, X-Ray).
func TestScopedResources(t *testing.T) {
	tpl := load(t)
	unscoped := regexp.MustCompile(`^(ec2:Describe[A-Za-z]+|autoscaling:Describe[A-Za-z]+|elasticloadbalancing:Describe[A-Za-z]+|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)|xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets))$`)
	for id, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		policies, err := tpl.RolePolicies(id)
		if err != nil {
			t.Error(err)
			continue
		}
		for name, stmts := range policies {
			for _, st := range stmts {
				if st.Effect != "Allow" || !slices.Contains(st.Resource, any("*")) {
					continue
				}
				for _, a := range st.Action {
					if !unscoped.MatchString(a) {
						t.Errorf("role %s policy %s allows %s on Resource \"*\"", id, name, a)
					}
				}
			}
		}
	}
}

func TestNoRoleAllowsWildcardActions(t *testing.T) {
	tpl := load(t)
	roles := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		roles++
		policies, err := tpl.RolePolicies(id)
		if err != nil {
			t.Error(err)
			continue
		}
		for name, stmts := range policies {
			for _, st := range stmts {
				if st.Effect != "Allow" {
					continue
				}
				for _, a := range st.Action {
					if strings.Contains(a, "*") {
						t.Errorf("role %s policy %s allows wildcard action %q", id, name, a)
					}
				}
			}
		}
	}
	if roles < len(wantFunctions)+2 {
		t.Errorf("only %d roles in the template", roles)
	}
}

func TestIsolationRoleDeniesEverything(t *testing.T) {
	tpl := load(t)
	var profiles []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::IAM::InstanceProfile" {
			profiles = append(profiles, id)
		}
	}
	if len(profiles) != 1 {
		t.Fatalf("instance profiles %v, want exactly one (the isolation profile)", profiles)
	}
	roles, _ := tpl.Resources[profiles[0]].Properties["Roles"].([]any)
	if len(roles) != 1 {
		t.Fatalf("isolation profile roles = %v", roles)
	}
	roleID, _ := roles[0].(map[string]any)["Ref"].(string)
	role := tpl.Resources[roleID]
	if _, ok := role.Properties["ManagedPolicyArns"]; ok {
		t.Errorf("isolation role %s has managed policies", roleID)
	}
	if _, ok := role.Properties["PermissionsBoundary"]; ok {
		t.Errorf("isolation role %s has a permissions boundary", roleID)
	}
	policies, err := tpl.RolePolicies(roleID)
	if err != nil {
		t.Fatal(err)
	}
	denyAll := false
	for name, stmts := range policies {
		for _, st := range stmts {
			switch {
			case st.Effect == "Allow":
				t.Errorf("isolation role policy %s allows %v", name, st.Action)
			case st.Effect == "Deny" && cmp.Equal(st.Action, []string{"*"}) && cmp.Equal(st.Resource, []any{"*"}) && st.Condition == nil:
				denyAll = true
			}
		}
	}
	if !denyAll {
		t.Errorf("isolation role %s has no unconditional Deny * on *", roleID)
	}

	// The attach function (and Verify containment, which attaches it again) may pass exactly this role and attach
	// exactly this profile.
	for _, attacher := range []string{"AttachIsolationProfileRole", "VerifyContainmentRole"} {
		policies, err = tpl.RolePolicies(attacher)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range policies[StepPolicyName] {
			if slices.Contains(st.Action, "iam:PassRole") {
				if r, _ := GetAttResource(st.Resource[0], "Arn"); len(st.Resource) != 1 || r != roleID {
					t.Errorf("%s: iam:PassRole on %v, want only the isolation role %s", attacher, st.Resource, roleID)
				}
			}
			if slices.Contains(st.Action, "ec2:AssociateIamInstanceProfile") {
				cond, _ := json.Marshal(st.Condition)
				if !strings.Contains(string(cond), `"ec2:NewInstanceProfile":{"Fn::GetAtt":["`+profiles[0]+`","Arn"]}`) {
					t.Errorf("%s: AssociateIamInstanceProfile is not limited to the isolation profile: %s", attacher, cond)
				}
			}
		}
	}
}

func TestStateMachines(t *testing.T) {
	tpl := load(t)
	for smID, want := range stateMachines {
		t.Run(smID, func(t *testing.T) { checkStateMachine(t, tpl, smID, want.definition, want.functions, want.others) })
	}
	n := 0
	for _, r := range tpl.Resources {
		if r.Type == "AWS::Serverless::StateMachine" || r.Type == "AWS::StepFunctions::StateMachine" {
			n++
		}
	}
	if n != len(stateMachines) {
		t.Errorf("%d state machines in the template, want %d", n, len(stateMachines))
	}
}

func checkStateMachine(t *testing.T, tpl *Template, smID, definition string, functions []string, others map[string]any) {
	sm, ok := tpl.Resources[smID]
	if !ok || sm.Type != "AWS::Serverless::StateMachine" {
		t.Fatalf("no AWS::Serverless::StateMachine %s", smID)
	}
	p := sm.Properties
	if p["Type"] != "STANDARD" || p["DefinitionUri"] != definition {
		t.Errorf("Type %v DefinitionUri %v, want STANDARD %s (redrive needs Standard)", p["Type"], p["DefinitionUri"], definition)
	}
	if tr, _ := p["Tracing"].(map[string]any); tr["Enabled"] != true {
		t.Errorf("Tracing = %v", p["Tracing"])
	}
	subs, _ := p["DefinitionSubstitutions"].(map[string]any)
	wantSubs := map[string]string{}
	for _, id := range functions {
		wantSubs[id+"Arn"] = id
	}
	gotSubs := map[string]string{}
	for k, v := range subs {
		if want, ok := others[k]; ok {
			if !cmp.Equal(v, want) {
				t.Errorf("substitution %s = %v, want %v", k, v, want)
			}
			continue
		}
		res, ok := GetAttResource(v, "Arn")
		if !ok {
			t.Errorf("substitution %s = %v, want !GetAtt <function>.Arn", k, v)
		}
		gotSubs[k] = res
	}
	if diff := cmp.Diff(wantSubs, gotSubs); diff != "" {
		t.Errorf("DefinitionSubstitutions (-want +got):\n%s", diff)
	}
	// The definition uses exactly these substitutions.
	raw, err := os.ReadFile(filepath.Join(root, definition))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
	}
	for k := range others {
		if _, ok := subs[k]; !ok {
			t.Errorf("no substitution %s", k)
		}
		why, awaiting := awaitingDefinition[smID+"/"+k]
		switch {
		case awaiting && used[k]:
			t.Errorf("%s now uses ${%s}: remove it from awaitingDefinition (%s)", definition, k, why)
		case awaiting:
			t.Logf("%s does not use ${%s} yet: %s", definition, k, why)
			used[k] = true
		}
		wantSubs[k] = ""
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(wantSubs)), slices.Sorted(maps.Keys(used))); diff != "" {
		t.Errorf("substitutions used by the definition (-want +got):\n%s", diff)
	}

	// Its role invokes exactly its functions.
	roleID, _ := GetAttResource(p["Role"], "Arn")
	policies, err := tpl.RolePolicies(roleID)
	if err != nil {
		t.Fatal(err)
	}
	var invoked []string
	for _, stmts := range policies {
		for _, st := range stmts {
			if slices.Contains(st.Action, "lambda:InvokeFunction") {
				if len(st.Action) != 1 {
					t.Errorf("invoke statement has other actions: %v", st.Action)
				}
				for _, r := range st.Resource {
					fn, ok := GetAttResource(r, "Arn")
					if !ok {
						t.Errorf("lambda:InvokeFunction on %v, want !GetAtt <function>.Arn", r)
					}
					invoked = append(invoked, fn)
				}
			}
		}
	}
	slices.Sort(invoked)
	if diff := cmp.Diff(functions, invoked); diff != "" {
		t.Errorf("functions the state machine may invoke (-want +got):\n%s", diff)
	}

	logging, _ := p["Logging"].(map[string]any)
	dests, _ := logging["Destinations"].([]any)
	if len(dests) != 1 {
		t.Fatalf("Logging = %v", p["Logging"])
	}
	lg, _ := dests[0].(map[string]any)["CloudWatchLogsLogGroup"].(map[string]any)
	id, _ := GetAttResource(lg["LogGroupArn"], "Arn")
	checkLogGroup(t, tpl, smID, map[string]any{"Ref": id})
}

// The rule's pattern as SPEC.md describes it, for a tag key and value.
func specPattern(key, value string) map[string]any {
	return map[string]any{
		"source":      []any{"aws.tag"},
		"detail-type": []any{"Tag Change on Resource"},
		"detail": map[string]any{
			"service":          []any{"ec2"},
			"resource-type":    []any{"instance"},
			"changed-tag-keys": []any{key},
			"tags":             map[string]any{key: []any{value}},
		},
	}
}

// rulePattern renders the isolation rule's EventPattern (a !Sub string) with the given parameter values.
func rulePattern(t *testing.T, tpl *Template, params map[string]string) map[string]any {
	t.Helper()
	return renderRulePattern(t, tpl, "IsolationRule", params)
}

// renderRulePattern renders a rule's EventPattern (a !Sub string) with the given parameter values.
func renderRulePattern(t *testing.T, tpl *Template, ruleID string, params map[string]string) map[string]any {
	t.Helper()
	rule, ok := tpl.Resources[ruleID]
	if !ok || rule.Type != "AWS::Events::Rule" {
		t.Fatalf("no AWS::Events::Rule %s", ruleID)
	}
	sub, _ := rule.Properties["EventPattern"].(map[string]any)
	s, ok := sub["Fn::Sub"].(string)
	if !ok {
		t.Fatalf("EventPattern = %v, want !Sub of a JSON string", rule.Properties["EventPattern"])
	}
	var missing []string
	rendered := regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := params[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("EventPattern uses %v", missing)
	}
	var pattern map[string]any
	if err := json.Unmarshal([]byte(rendered), &pattern); err != nil {
		t.Fatalf("EventPattern is not JSON: %v\n%s", err, rendered)
	}
	return pattern
}

func TestRulePatternMatchesSpec(t *testing.T) {
	tpl := load(t)
	defaults := map[string]string{}
	for _, name := range []string{"IsolationTagKey", "IsolationTagValue"} {
		d, ok := tpl.Parameters[name]["Default"].(string)
		if !ok {
			t.Fatalf("parameter %s has no string default", name)
		}
		defaults[name] = d
	}
	if defaults["IsolationTagKey"] != "Isolate" || defaults["IsolationTagValue"] != "true" {
		t.Errorf("tag defaults %v, want Isolate=true", defaults)
	}
	for _, kv := range [][2]string{{defaults["IsolationTagKey"], defaults["IsolationTagValue"]}, {"Quarantine", "now"}} {
		got := rulePattern(t, tpl, map[string]string{"IsolationTagKey": kv[0], "IsolationTagValue": kv[1]})
		if diff := cmp.Diff(specPattern(kv[0], kv[1]), got); diff != "" {
			t.Errorf("pattern for %s=%s (-want +got):\n%s", kv[0], kv[1], diff)
		}
	}

	targets, _ := tpl.Resources["IsolationRule"].Properties["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("rule targets = %v, want the admission queue only", targets)
	}
	target, _ := targets[0].(map[string]any)
	if !cmp.Equal(target["Arn"], map[string]any{"Fn::GetAtt": []any{"AdmissionQueue", "Arn"}}) {
		t.Errorf("rule target = %v, want the admission queue (issue 16)", target["Arn"])
	}
	if _, ok := target["Input"]; ok {
		t.Error("the target rewrites the input; the execution input must be the whole event")
	}
	retry, _ := target["RetryPolicy"].(map[string]any)
	if retry["MaximumEventAgeInSeconds"] != 86400 {
		t.Errorf("RetryPolicy = %v", retry)
	}
	dlq, _ := target["DeadLetterConfig"].(map[string]any)
	if q, _ := GetAttResource(dlq["Arn"], "Arn"); tpl.Resources[q].Type != "AWS::SQS::Queue" {
		t.Errorf("DeadLetterConfig = %v, want an SQS queue of the template", dlq)
	}
}

// matches is EventBridge's matching for the pattern forms the rule uses: every pattern field must be in the
// event; a list of values matches a value equal to one of them, or an array containing one of them.
func matches(pattern, event map[string]any) bool {
	for k, p := range pattern {
		ev, ok := event[k]
		if !ok {
			return false
		}
		switch p := p.(type) {
		case map[string]any:
			em, ok := ev.(map[string]any)
			if !ok || !matches(p, em) {
				return false
			}
		case []any:
			values := []any{ev}
			if arr, ok := ev.([]any); ok {
				values = arr
			}
			if !slices.ContainsFunc(values, func(v any) bool { return slices.ContainsFunc(p, func(want any) bool { return matchesValue(want, v) }) }) {
				return false
			}
		default:
			panic(fmt.Sprintf("pattern form %T not supported", p))
		}
	}
	return true
}

// matchesValue: one element of a pattern's list against one value: equal, or {"anything-but": [values]} (issue 13
// item 5: a value of the event that is none of them; EventBridge content filtering, anything-but matching).
func matchesValue(want, v any) bool {
	if m, ok := want.(map[string]any); ok {
		but, ok := m["anything-but"].([]any)
		if !ok || len(m) != 1 {
			panic(fmt.Sprintf("pattern form %v not supported", m))
		}
		return !slices.Contains(but, v)
	}
	return want == v
}

func TestSampleEventsAgainstTheRule(t *testing.T) {
	tpl := load(t)
	pattern := rulePattern(t, tpl, map[string]string{"IsolationTagKey": "Isolate", "IsolationTagValue": "true"})
	for file, want := range map[string]bool{
		"isolate.json":          true,
		"unknown-instance.json": true,
		"non-matching-tag.json": false,
		"other-resource.json":   false,
		"release.json":          false,
	} {
		raw, err := os.ReadFile(filepath.Join(root, "events", file))
		if err != nil {
			t.Error(err)
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got := matches(pattern, ev); got != want {
			t.Errorf("%s matches the rule: %v, want %v", file, got, want)
		}
	}
}

func TestAlarmsNotifyTheTopic(t *testing.T) {
	tpl := load(t)
	want := map[string]bool{
		"AWS/States ExecutionsFailed": true, "AWS/States ExecutionsTimedOut": true, "AWS/States ExecutionsAborted": true,
		"AWS/Events FailedInvocations": true, "AWS/SQS ApproximateNumberOfMessagesVisible": true,
		"AWS/Lambda Errors": true, "ec2-isolation/Reconciler OpenInstances": true, // the reconciler's (issue 14)
		"AWS/SQS ApproximateAgeOfOldestMessage":                            true, // admission stalled (issue 16)
		"map[Fn::Sub:ec2-isolation/${AWS::StackName}] UnstartableMessages": true, // a poison pill (the age leaves it out)
	}
	got := map[string]bool{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		got[fmt.Sprintf("%v %v", r.Properties["Namespace"], r.Properties["MetricName"])] = true
		if !cmp.Equal(r.Properties["AlarmActions"], []any{map[string]any{"Ref": "NotificationTopic"}}) {
			t.Errorf("alarm %s actions = %v", id, r.Properties["AlarmActions"])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alarms (-want +got):\n%s", diff)
	}
}

// No execution ends unseen: each state machine has an alarm on its failed, timed-out and aborted executions (an
// aborted or timed-out execution notifies nothing of its own).
func TestEveryStateMachineIsWatched(t *testing.T) {
	tpl := load(t)
	watched := map[string]map[string]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" || r.Properties["Namespace"] != "AWS/States" {
			continue
		}
		for _, d := range asList(r.Properties["Dimensions"]) {
			d, _ := d.(map[string]any)
			if ref, ok := d["Value"].(map[string]any)["Ref"].(string); ok && d["Name"] == "StateMachineArn" {
				if watched[ref] == nil {
					watched[ref] = map[string]bool{}
				}
				watched[ref][fmt.Sprint(r.Properties["MetricName"])] = true
			}
		}
	}
	n := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::StateMachine" {
			continue
		}
		n++
		for _, metric := range []string{"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} {
			if !watched[id][metric] {
				t.Errorf("state machine %s has no alarm on %s", id, metric)
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d state machines, want isolation, evidence and release at least", n)
	}
}

func TestFunctionEnvironment(t *testing.T) {
	tpl := load(t)
	want := map[string][]string{
		"ValidateAndRecordFunction": {"CONNECTION_TRACKING", "ISOLATION_GROUP_NAME", "ISOLATION_PROFILE_NAME", "LOG_LEVEL", "TAG_KEY", "TAG_VALUE"},
		"VerifyContainmentFunction": {"CONNECTION_TRACKING", "ISOLATION_GROUP_NAME", "ISOLATION_PROFILE_NAME", "LOG_LEVEL",
			"TAG_KEY", "TAG_VALUE"},
		"DisassociateProfileFunction":    {"ISOLATION_PROFILE_NAME", "LOG_LEVEL"},
		"AttachIsolationProfileFunction": {"ISOLATION_PROFILE_NAME", "LOG_LEVEL"},
		"EnsureSecurityGroupFunction":    {"CONNECTION_TRACKING", "ISOLATION_GROUP_NAME", "LOG_LEVEL"},
		"ApplySecurityGroupFunction":     {"CONNECTION_TRACKING", "LOG_LEVEL"},
		"SnapshotVolumesFunction":        {"LOG_LEVEL"},
		"NotifyFunction":                 {"CENTRAL_TOPIC_ARN", "LOG_LEVEL", "TOPIC_ARN"},
		"RecordIncidentFunction":         {"CENTRAL_BUCKET", "CENTRAL_BUCKET_REGION", "INCIDENT_BUCKET", "LOG_LEVEL"},
		"RevokeCredentialsFunction":      {"LOG_LEVEL", "REVOCABLE_ROLES", "REVOKE_CREDENTIALS", "STACK_ROLE_PATH"},
		"PreserveEvidenceFunction": {"DEREGISTER_TARGETS", "DETACH_AUTO_SCALING", "ENABLE_TERMINATION_PROTECTION",
			"INCIDENT_BUCKET", "KEEP_VOLUMES", "LOG_LEVEL", "STOP_ON_SHUTDOWN"},
		"ReadIncidentRecordFunction":       {"INCIDENT_BUCKET", "ISOLATION_GROUP_NAME", "LOG_LEVEL", "RELEASE_TAG_VALUE", "TAG_KEY"},
		"RestoreSecurityGroupsFunction":    {"LOG_LEVEL"},
		"RestoreInstanceProfileFunction":   {"ISOLATION_PROFILE_NAME", "LOG_LEVEL"},
		"LiftCredentialRevocationFunction": {"LOG_LEVEL", "REVOCABLE_ROLES", "STACK_ROLE_PATH"},
		"RestoreEvidenceSettingsFunction":  {"LOG_LEVEL"},
		"ReconcileFunction": {"CONNECTION_TRACKING", "INCIDENT_BUCKET", "ISOLATION_GROUP_NAME", "ISOLATION_PROFILE_NAME",
			"ISOLATION_STATE_MACHINE_ARN", "LOG_LEVEL", "PRECREATE_GROUPS", "RECONCILE_MAX_RUNNING", "RECONCILE_MAX_STARTS",
			"RELEASE_STATE_MACHINE_ARN", "RELEASE_TAG_VALUE", "TAG_KEY", "TAG_VALUE"},
		"AdmissionStarterFunction": {"ADMISSION_WINDOW", "EVIDENCE_STATE_MACHINE_ARN", "EVIDENCE_WINDOW",
			"ISOLATION_STATE_MACHINE_ARN", "LOG_LEVEL"},
	}
	got := map[string][]string{}
	for id := range wantFunctions {
		env, _ := tpl.Resources[id].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		got[id] = slices.Sorted(maps.Keys(vars))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment variables (-want +got):\n%s", diff)
	}
}

// aslDef is the part of the definition the tests read.
type aslDef struct {
	States map[string]aslState
}

type aslState struct {
	Type           string
	Resource       string
	TimeoutSeconds int
	Branches       []aslDef
}

func loadASL(t *testing.T, definition string) aslDef {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, definition))
	if err != nil {
		t.Fatal(err)
	}
	var d aslDef
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d aslDef) tasks() []aslState {
	var out []aslState
	for _, s := range d.States {
		if s.Type == "Task" {
			out = append(out, s)
		}
		for _, b := range s.Branches {
			out = append(out, b.tasks()...)
		}
	}
	return out
}
