package credentials_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	instanceID  = "i-0123456789abcdef0"
	instanceARN = "arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID
	profileARN  = "arn:aws:iam::123456789012:instance-profile/teams/web"
	policyName  = "ec2-isolation-revoke-" + instanceID
)

var ctx = context.Background()

// scenario: the instance's profile (with a path) gives role workloads/web-role, which has two inline policies and
// two managed policies of its own.
func scenario() sim.Scenario {
	return sim.Scenario{
		VPCs:             []sim.VPC{{ID: "vpc-0aaa0000000000001", CIDR: "10.0.0.0/16"}},
		Subnets:          []sim.Subnet{{ID: "subnet-0aaa000000000001", VpcID: "vpc-0aaa0000000000001", CIDR: "10.0.1.0/24"}},
		InstanceProfiles: []sim.InstanceProfile{{Name: "web", ARN: profileARN, Role: "web-role"}, {Name: "empty"}},
		Roles: []sim.Role{{
			Name: "web-role", Path: "/workloads/",
			InlinePolicies: map[string]sim.PolicyDocument{
				"read-config": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}`,
				"write-logs":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}`,
			},
			AttachedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"},
		}},
		Instances: []sim.Instance{{ID: instanceID, SubnetID: "subnet-0aaa000000000001", Profile: "web"}},
	}
}

var input = workflow.RevokeInput{InstanceID: instanceID, InstanceARN: instanceARN, ExecutionName: "exec-1", ProfileARN: profileARN}

// roleState is everything on a role that the steps must not touch, plus the revoking policy: inline policies by
// name (decoded documents) and attached managed policies.
type roleState struct {
	Inline   map[string]string
	Attached []string
}

func readRole(t *testing.T, client *iam.Client, role string) roleState {
	t.Helper()
	st := roleState{Inline: map[string]string{}}
	names, err := client.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatalf("list role policies: %v", err)
	}
	for _, n := range names.PolicyNames {
		p, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)})
		if err != nil {
			t.Fatalf("get role policy %s: %v", n, err)
		}
		doc, err := url.PathUnescape(aws.ToString(p.PolicyDocument))
		if err != nil {
			t.Fatalf("policy %s: document not URL-encoded: %v", n, err)
		}
		st.Inline[n] = doc
	}
	att, err := client.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatalf("list attached role policies: %v", err)
	}
	for _, p := range att.AttachedPolicies {
		st.Attached = append(st.Attached, aws.ToString(p.PolicyArn))
	}
	return st
}

func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }

func start(t *testing.T, sc sim.Scenario, s credentials.Settings) (*sim.Server, *iam.Client, *credentials.Handler) {
	t.Helper()
	srv := simtest.Start(t, sc)
	return srv, iam.NewFromConfig(srv.AWSConfig("test")), credentials.New(iam.NewFromConfig(srv.AWSConfig("revoke")), s, nil)
}

var everyRole = credentials.Settings{RevocableRoles: "*", Revoke: true}

// The revoking policy, parsed: a Deny of every action on every resource, conditioned on the instance's ARN.
type statement struct {
	Sid       string
	Effect    string
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

func TestRevokeDeniesTheInstancesCredentialsAndLiftRemovesOnlyThat(t *testing.T) {
	srv, client, h := start(t, scenario(), everyRole)
	before := readRole(t, client, "web-role")

	out, err := h.Revoke(ctx, input)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if diff := cmp.Diff([]workflow.RevokedRole{{RoleName: "web-role", PolicyName: policyName, Changed: true}}, out.Roles); diff != "" {
		t.Errorf("revoked roles (-want +got):\n%s", diff)
	}
	if len(out.Changes) != 1 || out.Changes[0].Action != "PutRolePolicy" || out.Changes[0].Resource != "web-role" ||
		out.Changes[0].Step != "Revoke credentials" || out.Changes[0].At.IsZero() {
		t.Errorf("changes = %+v, want one PutRolePolicy on web-role", out.Changes)
	}

	after := readRole(t, client, "web-role")
	doc, ok := after.Inline[policyName]
	if !ok {
		t.Fatalf("role has no inline policy %s: %v", policyName, after.Inline)
	}
	var policy struct {
		Version   string
		Statement []statement
	}
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		t.Fatalf("policy document is not JSON: %v\n%s", err, doc)
	}
	if len(policy.Statement) != 1 {
		t.Fatalf("%d statements, want 1: %s", len(policy.Statement), doc)
	}
	st := policy.Statement[0]
	wantCond := map[string]map[string]any{"StringEquals": {"ec2:SourceInstanceARN": instanceARN}}
	if policy.Version != "2012-10-17" || st.Effect != "Deny" || st.Action != "*" || st.Resource != "*" {
		t.Errorf("statement = %+v (version %s), want Deny of * on *", st, policy.Version)
	}
	if diff := cmp.Diff(wantCond, st.Condition); diff != "" {
		t.Errorf("condition (-want +got):\n%s", diff)
	}
	// Nothing else on the role changed.
	delete(after.Inline, policyName)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the role's other policies changed (-before +after):\n%s", diff)
	}

	// Again (a retry, a redrive): reads only.
	srv.ResetCalls()
	again, err := h.Revoke(ctx, input)
	if err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second Revoke made mutating calls %v", m)
	}
	if len(again.Roles) != 1 || again.Roles[0].Changed || len(again.Changes) != 0 {
		t.Errorf("second Revoke = %+v, want the role unchanged", again)
	}

	// Lift replaces the policy with the released one (same name) and changes nothing else.
	releasedAt := time.Date(2026, 12, 5, 9, 30, 0, 123e6, time.UTC)
	lift := input
	lift.ReleaseStartedAt = &releasedAt
	lifted, err := h.Lift(ctx, lift)
	if err != nil {
		t.Fatalf("Lift: %v", err)
	}
	until := releasedAt.Add(credentials.KeepFor).Truncate(time.Second).Add(time.Second)
	if diff := cmp.Diff([]workflow.RevokedRole{{RoleName: "web-role", PolicyName: policyName, Changed: true,
		DeniedBefore: &releasedAt, Until: &until}}, lifted.Roles); diff != "" {
		t.Errorf("lifted roles (-want +got):\n%s", diff)
	}
	if len(lifted.Changes) != 1 || lifted.Changes[0].Action != "PutRolePolicy" || lifted.Changes[0].Step != "Lift credential revocation" {
		t.Errorf("lift changes = %+v", lifted.Changes)
	}
	released := readRole(t, client, "web-role")
	if got, _, ok := credentials.ReleasedUntil(released.Inline[policyName]); !ok || !got.Equal(until) {
		t.Errorf("released policy %s: until %v (%v), want %v", released.Inline[policyName], got, ok, until)
	}
	delete(released.Inline, policyName)
	if diff := cmp.Diff(before, released); diff != "" {
		t.Errorf("after lift, the role's other policies differ from before isolation (-before +after):\n%s", diff)
	}
	srv.ResetCalls()
	later := releasedAt.Add(time.Hour) // a redrive of another release: the first release's time stands
	lift.ReleaseStartedAt = &later
	if out, err := h.Lift(ctx, lift); err != nil || len(out.Roles) != 1 || out.Roles[0].Changed || !out.Roles[0].Until.Equal(until) {
		t.Errorf("second Lift = %+v, %v; want the role unchanged", out, err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second Lift made mutating calls %v", m)
	}
}

// A stale policy of the same name (another document) is replaced by the exact one.
func TestRevokeRewritesADifferentDocument(t *testing.T) {
	sc := scenario()
	sc.Roles[0].InlinePolicies[policyName] = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`
	_, client, h := start(t, sc, everyRole)
	out, err := h.Revoke(ctx, input)
	if err != nil || len(out.Roles) != 1 || !out.Roles[0].Changed {
		t.Fatalf("Revoke = %+v, %v; want the policy rewritten", out, err)
	}
	var got, want any
	_ = json.Unmarshal([]byte(readRole(t, client, "web-role").Inline[policyName]), &got)
	_ = json.Unmarshal([]byte(credentials.Document(instanceARN)), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestSkipsWithoutACall(t *testing.T) {
	tests := []struct {
		name     string
		settings credentials.Settings
		lift     bool
		in       func(*workflow.RevokeInput)
		skipped  string
	}{
		{"revocation turned off", credentials.Settings{RevocableRoles: "*"}, false, nil, "REVOKE_CREDENTIALS=false"},
		{"no profile", everyRole, false, func(in *workflow.RevokeInput) { in.ProfileARN = "" }, "no instance profile"},
		{"no profile (lift)", everyRole, true, func(in *workflow.RevokeInput) { in.ProfileARN = "" }, "no instance profile"},
		{"role outside the pattern", credentials.Settings{RevocableRoles: "web-*", Revoke: true}, false, nil, "workloads/web-role is outside"},
		{"role outside the pattern (lift)", credentials.Settings{RevocableRoles: "other/*", Revoke: true}, true, nil, "workloads/web-role is outside"},
		// Issue 13, item 11: the stack's roles are told apart by their path.
		{"a role of the stack", credentials.Settings{RevocableRoles: "*", Revoke: true, StackRolePath: "/workloads/"}, false, nil, "one of the stack's own roles"},
		{"a role of the stack (lift)", credentials.Settings{RevocableRoles: "*", Revoke: true, StackRolePath: "/workloads/"}, true, nil, "one of the stack's own roles"},
		{"profile deleted", everyRole, false, func(in *workflow.RevokeInput) {
			in.ProfileARN = "arn:aws:iam::123456789012:instance-profile/deleted"
		}, "no longer exists"},
		{"profile without role", everyRole, false, func(in *workflow.RevokeInput) {
			in.ProfileARN = "arn:aws:iam::123456789012:instance-profile/empty"
		}, "has no role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, client, h := start(t, scenario(), tt.settings)
			before := readRole(t, client, "web-role")
			in := input
			if tt.in != nil {
				tt.in(&in)
			}
			run := h.Revoke
			if tt.lift {
				run = h.Lift
			}
			out, err := run(ctx, in)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(out.Roles) != 0 || len(out.Changes) != 0 {
				t.Errorf("output = %+v, want nothing done", out)
			}
			if !slices.ContainsFunc(out.Skipped, func(s string) bool { return strings.Contains(s, tt.skipped) }) {
				t.Errorf("skipped = %q, want a reason with %q", out.Skipped, tt.skipped)
			}
			if m := mutating(srv); len(m) != 0 {
				t.Errorf("mutating calls %v", m)
			}
			if diff := cmp.Diff(before, readRole(t, client, "web-role")); diff != "" {
				t.Errorf("role changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestRefusesBadInputWithoutACall(t *testing.T) {
	tests := []struct {
		name string
		in   func(*workflow.RevokeInput)
	}{
		{"no execution", func(in *workflow.RevokeInput) { in.ExecutionName = "" }},
		{"bad instance id", func(in *workflow.RevokeInput) { in.InstanceID = "i-xyz" }},
		{"ARN of another instance", func(in *workflow.RevokeInput) {
			in.InstanceARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0fedcba9876543210"
		}},
		{"not an instance ARN", func(in *workflow.RevokeInput) { in.InstanceARN = "*" }},
		{"not a profile ARN", func(in *workflow.RevokeInput) { in.ProfileARN = "arn:aws:iam::123456789012:role/web-role" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, h := start(t, scenario(), everyRole)
			in := input
			tt.in(&in)
			for _, run := range []func(context.Context, workflow.RevokeInput) (workflow.RevokeOutput, error){h.Revoke, h.Lift} {
				_, err := run(ctx, in)
				var ii *steperr.InvalidInput
				if !errors.As(err, &ii) {
					t.Errorf("err = %v (%T), want InvalidInput", err, err)
				}
			}
			if n := len(srv.Calls()); n != 0 {
				t.Errorf("%d calls before refusing", n)
			}
		})
	}
}

// IAM refusing the put (the stack's permissions do not cover the role) is a named error, not a skip.
func TestIAMRefusalIsNamed(t *testing.T) {
	sc := scenario()
	sc.Faults.Errors = []sim.ErrorFault{{Action: "PutRolePolicy", Code: "AccessDenied", Status: 403}}
	_, _, h := start(t, sc, everyRole)
	_, err := h.Revoke(ctx, input)
	var ae *steperr.AWSError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "web-role") {
		t.Errorf("err = %v (%T), want AWSError naming the role", err, err)
	}
}

// A role whose inline policies are full (IAM's 10,240 characters, e.g. many instances of one role isolated at
// once): the instance is left contained without the revocation, which the output says, and the role is unchanged.
func TestRevokeOnAFullRoleSaysNotRevoked(t *testing.T) {
	sc := scenario()
	filler := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` +
		strings.Repeat("x", 9900) + `"}]}`
	sc.Roles[0].InlinePolicies["big"] = sim.PolicyDocument(filler)
	srv, client, h := start(t, sc, everyRole)
	before := readRole(t, client, "web-role")
	srv.ResetCalls()
	out, err := h.Revoke(ctx, input)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if len(out.Roles) != 0 || len(out.Changes) != 0 || len(out.Skipped) != 1 || !strings.Contains(out.Skipped[0], "NOT revoked") {
		t.Errorf("Revoke = %+v, want one skip saying the credentials are NOT revoked", out)
	}
	if diff := cmp.Diff(before, readRole(t, client, "web-role")); diff != "" {
		t.Errorf("role changed (-before +after):\n%s", diff)
	}
}
