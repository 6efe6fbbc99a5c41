package template

// Least privilege and safe defaults (the reliability issue's item 4), as far as the template decides them. The
// other halves are checked elsewhere: that the isolation group Ensure returns has no rule, in
// internal/reliability (read back through DescribeSecurityGroups after every soak execution) and FuzzEnsure; the
// isolation role's deny-all in TestIsolationRoleDeniesEverything; "*" resources and wildcard actions in
// TestScopedResources and TestNoRoleAllowsWildcardActions; the functions' timeouts in
// TestTimeoutsAreBoundedAndShorterThanTheTasks; the reservation's fit in the default quota in
// TestIAMReviewReservedConcurrencyFitsTheDefaultQuota.

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// condition returns the values a statement's condition requires for key with operator op.
func condition(st Statement, op, key string) []string {
	m, _ := st.Condition[op].(map[string]any)
	var out []string
	for _, v := range asList(m[key]) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		} else {
			b, _ := json.Marshal(v)
			out = append(out, string(b))
		}
	}
	return out
}

// resourceType is the EC2 resource type of an ARN written as !Sub "arn:...:ec2:...:TYPE/ID" ("" otherwise).
func resourceType(r any) string {
	s, ok := r.(string)
	if !ok {
		s = subOf(r)
	}
	if !strings.Contains(s, ":ec2:") {
		return ""
	}
	m := arnType.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

var arnType = regexp.MustCompile(`:([a-z][a-z-]*)/[^:/]*$`)

// allowStatements lists every Allow statement of every role of the template, by role.
func allowStatements(t *testing.T, tpl *Template) map[string][]Statement {
	t.Helper()
	out := map[string][]Statement{}
	for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
		if tpl.Resources[id].Type != "AWS::IAM::Role" {
			continue
		}
		policies, err := tpl.RolePolicies(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range slices.Sorted(maps.Keys(policies)) {
			for _, st := range policies[name] {
				if st.Effect == "Allow" {
					out[id] = append(out[id], st)
				}
			}
		}
	}
	return out
}

// The isolation group must stay empty: the only role that may add security group rules is Ensure's, and only to
// a group the stack manages whose role tag says it is the untrack-first (allow-all) group. Removing rules is
// allowed on the stack's groups only.
func TestNoRoleCanAddRulesToTheIsolationGroup(t *testing.T) {
	tpl := load(t)
	authorize := []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"}
	revoke := []string{"ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"}
	granted := 0
	for role, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			adds := slices.ContainsFunc(st.Action, func(a string) bool { return slices.Contains(authorize, a) })
			removes := slices.ContainsFunc(st.Action, func(a string) bool { return slices.Contains(revoke, a) })
			if !adds && !removes {
				continue
			}
			// Verify containment revokes a rule it finds on an isolation group; only Ensure adds rules (to the
			// untrack-first group).
			// The reconciler keeps the groups ready with Ensure itself, under Ensure's scoping.
			if role != "EnsureSecurityGroupRole" && role != "ReconcileRole" && (role != "VerifyContainmentRole" || adds) {
				t.Errorf("role %s may change security group rules (%v)", role, st.Action)
				continue
			}
			for _, r := range st.Resource {
				switch typ := resourceType(r); typ {
				case "security-group":
					if !slices.Equal(condition(st, "StringEquals", "aws:ResourceTag/ec2-isolation:managed"), []string{"true"}) {
						t.Errorf("%v on any security group, not only the stack's (aws:ResourceTag/ec2-isolation:managed)", st.Action)
					}
					if adds {
						granted++
						if !slices.Equal(condition(st, "StringEquals", "aws:ResourceTag/ec2-isolation:role"), []string{"untrack"}) {
							t.Errorf("%v on a group whose role tag is not untrack: the isolation group could get rules", st.Action)
						}
					}
				case "security-group-rule":
					// Authorize* lists the new rule's resource too; the group statement above decides.
				default:
					t.Errorf("%v on %v (type %q)", st.Action, r, typ)
				}
			}
		}
	}
	if granted == 0 {
		t.Error("no statement allows the untrack-first group's rules: untrack-first mode cannot work")
	}
}

// Who may publish to the notification topic: by the topic policy, only the stack's own alarms (the CloudWatch
// service principal, for alarms of this stack in this account); by identity policy, only the notify function's
// role, on this topic only. Nobody else is granted a forged "isolated" message.
func TestOnlyTheStackPublishesToTheTopic(t *testing.T) {
	tpl := load(t)
	policies := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::SNS::TopicPolicy" {
			continue
		}
		policies++
		if !jsonEqual(r.Properties["Topics"], []any{map[string]any{"Ref": "NotificationTopic"}}) {
			t.Errorf("topic policy %s applies to %v", id, r.Properties["Topics"])
		}
		for i, st := range statementsOf(t, r.Properties, "PolicyDocument") {
			if st["Effect"] != "Allow" {
				continue
			}
			principal, _ := json.Marshal(st["Principal"])
			cond, _ := st["Condition"].(map[string]any)
			eq, _ := cond["StringEquals"].(map[string]any)
			like, _ := cond["ArnLike"].(map[string]any)
			src := subOf(like["aws:SourceArn"])
			switch {
			case string(principal) != `{"Service":"cloudwatch.amazonaws.com"}`:
				t.Errorf("topic policy %s statement %d allows %s to %v", id, i, principal, actionsOf(st))
			case refOf(eq["aws:SourceAccount"]) != "AWS::AccountId":
				t.Errorf("topic policy %s statement %d: CloudWatch of any account may publish (aws:SourceAccount %v)", id, i, eq["aws:SourceAccount"])
			case !strings.HasPrefix(src, "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-"):
				t.Errorf("topic policy %s statement %d: alarms other than the stack's may publish (aws:SourceArn %q)", id, i, src)
			}
			if actions := actionsOf(st); !slices.Equal(actions, []string{"sns:Publish"}) {
				t.Errorf("topic policy %s statement %d allows %v", id, i, actions)
			}
		}
	}
	if policies != 1 {
		t.Errorf("%d topic policies, want one", policies)
	}
	publishers := 0
	for role, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			if !slices.ContainsFunc(st.Action, func(a string) bool { return a == "sns:Publish" || strings.HasPrefix(a, "sns:*") }) {
				continue
			}
			publishers++
			if role != "NotifyRole" {
				t.Errorf("role %s may publish (%v on %v)", role, st.Action, st.Resource)
			}
			if !jsonEqual(st.Resource, []any{map[string]any{"Ref": "NotificationTopic"}}) {
				t.Errorf("role %s publishes to %v, want the notification topic only", role, st.Resource)
			}
		}
	}
	if publishers != 1 {
		t.Errorf("%d statements allow sns:Publish, want the notify role's one", publishers)
	}
}

// A mutating EC2 action is allowed on "any instance / ENI / subnet / VPC / volume" (containment must work on any
// of them), but on the resources the account's other workloads share with the stack, security groups and
// snapshots, only with a condition that confines it to what the stack creates: its tag, or the create call.
//
// One exception, on purpose: "Restore security groups" puts back each ENI's recorded groups, which are the
// account's own, so its ModifyNetworkInterfaceAttribute is allowed onto any group. Its role has no other mutating
// action, and the release runs only for an instance the stack isolated ("Read incident record" refuses others).
func TestMutatingEC2ActionsAreConfinedToTheStacksResources(t *testing.T) {
	tpl := load(t)
	exempt := map[string]string{"RestoreSecurityGroupsRole": "ec2:ModifyNetworkInterfaceAttribute"}
	anyOf := map[string]bool{"instance": true, "network-interface": true, "subnet": true, "vpc": true, "volume": true,
		// Authorize* lists the new rule's resource; the group statement decides (TestNoRoleCanAddRulesToTheIsolationGroup).
		"security-group-rule": true}
	for role, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			for _, a := range st.Action {
				if !strings.HasPrefix(a, "ec2:") || strings.HasPrefix(a, "ec2:Describe") {
					continue
				}
				for _, r := range st.Resource {
					typ := resourceType(r)
					if anyOf[typ] || (exempt[role] == a && typ == "security-group") {
						continue
					}
					var confined []string
					for _, key := range []string{"aws:ResourceTag/ec2-isolation:managed", "aws:RequestTag/ec2-isolation:managed", "ec2:CreateAction"} {
						if v := condition(st, "StringEquals", key); len(v) > 0 {
							confined = append(confined, fmt.Sprintf("%s=%v", key, v))
						}
					}
					if v, ok := st.Condition["Null"].(map[string]any); ok && v["aws:RequestTag/ec2-isolation:execution"] == "false" {
						confined = append(confined, "tagged with the execution")
					}
					if len(confined) == 0 {
						t.Errorf("role %s: %s on %v (%q) without a condition confining it to the stack's resources", role, a, r, typ)
					}
				}
			}
		}
	}
}

// The defaults must deploy on any account (issue 13 item 7): Lambda refuses a reservation that leaves fewer than
// 100 unreserved concurrent executions, and new accounts have a concurrency quota of 10 or 50, so by default no
// function reserves any. A reservation stays available behind FunctionConcurrency (it caps a storm's steps and
// keeps the account's other workloads their concurrency): the isolation functions reserve it when it is not 0,
// the release-only ones never; and the workflow runs at most three tasks of an execution at once (no Map state,
// one Parallel of three branches: network, record and IAM, evidence).
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
func TestDefaultsDeployOnAnyConcurrencyQuota(t *testing.T) {
	tpl := load(t)
	p := tpl.Parameters["FunctionConcurrency"]
	if def, ok := p["Default"].(int); !ok || def != 0 {
		t.Fatalf("FunctionConcurrency Default = %v: %d functions x that reserved fails the deploy on an account with a concurrency quota of 10 (Lambda keeps 100 unreserved)",
			p["Default"], len(isolationFunctions()))
	}
	isolation := isolationFunctions()
	if got, ok := tpl.Globals["Function"]["ReservedConcurrentExecutions"]; ok {
		t.Errorf("Globals ReservedConcurrentExecutions = %v: it would reserve for the release functions too", got)
	}
	if got := tpl.Conditions["HasConcurrencyLimit"]; !jsonEqual(got, map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "FunctionConcurrency"}, 0}}}}) {
		t.Errorf("HasConcurrencyLimit = %v, want FunctionConcurrency != 0", got)
	}
	want := map[string]any{"Fn::If": []any{"HasConcurrencyLimit", map[string]any{"Ref": "FunctionConcurrency"}, map[string]any{"Ref": "AWS::NoValue"}}}
	for _, f := range tpl.Functions() {
		v, ok := tpl.Resources[f.LogicalID].Properties["ReservedConcurrentExecutions"]
		switch {
		case isolation[f.LogicalID] && !jsonEqual(v, want):
			t.Errorf("%s ReservedConcurrentExecutions = %v, want %v", f.LogicalID, v, want)
		case !isolation[f.LogicalID] && ok:
			t.Errorf("%s (release only) reserves concurrency: %v", f.LogicalID, v)
		}
	}
	for smID, sm := range stateMachines {
		const maxBranches = 3
		var walk func(d aslDef, depth int)
		walk = func(d aslDef, depth int) {
			for name, s := range d.States {
				switch {
				case s.Type == "Map":
					t.Errorf("%s: state %s is a Map: an execution could run unbounded tasks at once", smID, name)
				case s.Type == "Parallel" && (len(s.Branches) > maxBranches || depth > 0):
					t.Errorf("%s: Parallel %s: %d branches at depth %d", smID, name, len(s.Branches), depth)
				}
				for _, b := range s.Branches {
					walk(b, depth+1)
				}
			}
		}
		walk(loadASL(t, sm.definition), 0)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
