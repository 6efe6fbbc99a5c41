package sim

import (
	"context"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"
)

const appPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::app/*"}]}`

func startIAM(t *testing.T) (*Server, *iam.Client) {
	t.Helper()
	sc := baseScenario()
	sc.InstanceProfiles = append(sc.InstanceProfiles, InstanceProfile{Name: "app-profile", Role: "app-role",
		ARN: "arn:aws:iam::123456789012:instance-profile/apps/app-profile"})
	sc.Roles = []Role{{Name: "app-role", Path: "/apps/", InlinePolicies: map[string]PolicyDocument{"app-data": appPolicy},
		AttachedPolicies: []string{"arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}}}
	s, _, _ := start(t, sc)
	return s, iam.NewFromConfig(s.AWSConfig("AKIDTEST"))
}

func TestIAMInstanceProfileAndRole(t *testing.T) {
	s, c := startIAM(t)
	ctx := context.Background()
	out, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("app-profile")})
	if err != nil {
		t.Fatal(err)
	}
	p := out.InstanceProfile
	type view struct{ Name, Path, Arn, Role, RoleArn, RolePath string }
	got := view{Name: aws.ToString(p.InstanceProfileName), Path: aws.ToString(p.Path), Arn: aws.ToString(p.Arn)}
	if len(p.Roles) == 1 {
		got.Role, got.RoleArn, got.RolePath = aws.ToString(p.Roles[0].RoleName), aws.ToString(p.Roles[0].Arn), aws.ToString(p.Roles[0].Path)
	}
	want := view{"app-profile", "/apps/", "arn:aws:iam::123456789012:instance-profile/apps/app-profile", "app-role",
		"arn:aws:iam::123456789012:role/apps/app-role", "/apps/"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instance profile (-want +got):\n%s", diff)
	}
	if p.CreateDate == nil || aws.ToString(p.InstanceProfileId) == "" {
		t.Errorf("profile without id or date: %+v", p)
	}
	// A role only named by a profile exists too.
	r, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("web-role")})
	if err != nil || aws.ToString(r.Role.Arn) != "arn:aws:iam::123456789012:role/web-role" {
		t.Errorf("GetRole(web-role): %+v %v", r, err)
	}
	trust, _ := url.QueryUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument))
	if trust != defaultTrustPolicy {
		t.Errorf("trust policy %q", trust)
	}
	_, err = c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("nope")})
	wantErr(t, err, "NoSuchEntity", 404)
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("nope")})
	wantErr(t, err, "NoSuchEntity", 404)
	for _, call := range s.Calls() {
		if call.Service != "iam" || call.Mutating {
			t.Errorf("call %s/%s mutating=%v", call.Service, call.Action, call.Mutating)
		}
	}
}

func TestIAMRolePolicies(t *testing.T) {
	s, c := startIAM(t)
	ctx := context.Background()
	role := aws.String("app-role")
	revoke := `{"Version":"2012-10-17","Statement":[{"Sid":"Revoke","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"ec2:SourceInstanceARN":"arn:aws:ec2:us-east-1:123456789012:instance/i-0aaaaaaaaaaaaaaa1"}}}]}`
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("revoke"), PolicyDocument: aws.String(revoke)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("revoke")})
	if err != nil {
		t.Fatal(err)
	}
	// IAM returns the document URL-encoded; the SDK does not decode it.
	raw := aws.ToString(got.PolicyDocument)
	if raw == revoke {
		t.Errorf("document not URL-encoded: %s", raw)
	}
	if doc, err := url.QueryUnescape(raw); err != nil || doc != revoke {
		t.Errorf("decoded document %q (%v), want %q", doc, err, revoke)
	}
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: role})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app-data", "revoke"}, names.PolicyNames); diff != "" {
		t.Errorf("inline policies (-want +got):\n%s", diff)
	}
	paged, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: role, MaxItems: aws.Int32(1)})
	if err != nil || !paged.IsTruncated || len(paged.PolicyNames) != 1 || aws.ToString(paged.Marker) == "" {
		t.Errorf("first page: %+v %v", paged, err)
	}
	att, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: role})
	if err != nil {
		t.Fatal(err)
	}
	var attached []string
	for _, p := range att.AttachedPolicies {
		attached = append(attached, aws.ToString(p.PolicyName)+"="+aws.ToString(p.PolicyArn))
	}
	if diff := cmp.Diff([]string{"CloudWatchAgentServerPolicy=arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
		"AmazonSSMManagedInstanceCore=arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}, attached); diff != "" {
		t.Errorf("attached (-want +got):\n%s", diff)
	}

	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: role, PolicyName: aws.String("revoke")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: role, PolicyName: aws.String("revoke")})
	wantErr(t, err, "NoSuchEntity", 404)
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("revoke")})
	wantErr(t, err, "NoSuchEntity", 404)

	var st RoleState
	s.Update(func(a *Account) { st, _ = a.Role("app-role") })
	want := RoleState{Name: "app-role", Path: "/apps/", ARN: "arn:aws:iam::123456789012:role/apps/app-role",
		InlinePolicies:   map[string]string{"app-data": appPolicy},
		AttachedPolicies: []string{"arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("role after put and delete (-want +got):\n%s", diff)
	}
	var mutating []string
	for _, call := range s.Calls() {
		if call.Mutating {
			mutating = append(mutating, call.Action+"="+call.ErrorCode)
		}
	}
	if diff := cmp.Diff([]string{"PutRolePolicy=", "DeleteRolePolicy=", "DeleteRolePolicy=NoSuchEntity"}, mutating); diff != "" {
		t.Errorf("mutating calls (-want +got):\n%s", diff)
	}
}

func TestIAMPutRolePolicyRefusals(t *testing.T) {
	s, c := startIAM(t)
	ctx := context.Background()
	tests := []struct {
		name, role, policy, doc string
		code                    string
		status                  int
	}{
		{"not JSON", "app-role", "p", `{"Version":`, "MalformedPolicyDocument", 400},
		{"no statement", "app-role", "p", `{"Version":"2012-10-17"}`, "MalformedPolicyDocument", 400},
		{"bad effect", "app-role", "p", `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`, "MalformedPolicyDocument", 400},
		{"bad version", "app-role", "p", `{"Version":"2020-01-01","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, "MalformedPolicyDocument", 400},
		{"unknown role", "nope", "p", appPolicy, "NoSuchEntity", 404},
		{"bad policy name", "app-role", "a b", appPolicy, "ValidationError", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(tc.role), PolicyName: aws.String(tc.policy),
				PolicyDocument: aws.String(tc.doc)})
			wantErr(t, err, tc.code, tc.status)
		})
	}
	var st RoleState
	s.Update(func(a *Account) { st, _ = a.Role("app-role") })
	if diff := cmp.Diff(map[string]string{"app-data": appPolicy}, st.InlinePolicies); diff != "" {
		t.Errorf("inline policies after refusals (-want +got):\n%s", diff)
	}
}

func TestScenarioRoleDocumentAsObject(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"roles": [{"name": "r", "inlinePolicies": {"p": {"Version": "2012-10-17",
		"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`
	if got := string(sc.Roles[0].InlinePolicies["p"]); got != want {
		t.Errorf("document %s, want %s", got, want)
	}
	if _, err := ParseScenario([]byte(`{"roles": [{"name": "r", "inlinePolicies": {"p": {"Statement": "x"}}}]}`)); err == nil {
		t.Error("malformed inline policy accepted")
	}
}

// Error faults by action name apply to IAM as to EC2: a throttled PutRolePolicy is retried by the SDK.
func TestIAMInjectedThrottling(t *testing.T) {
	sc := baseScenario()
	sc.Faults.Errors = []ErrorFault{{Action: "PutRolePolicy", Service: "iam", Code: "Throttling", FirstCalls: 2}}
	s, _, _ := start(t, sc)
	c := iam.NewFromConfig(s.AWSConfig("AKIDTEST"))
	if _, err := c.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String("web-role"),
		PolicyName: aws.String("p"), PolicyDocument: aws.String(appPolicy)}); err != nil {
		t.Fatalf("PutRolePolicy (retried): %v", err)
	}
	var codes []string
	for _, call := range s.Calls() {
		codes = append(codes, call.Action+"="+call.ErrorCode)
	}
	if diff := cmp.Diff([]string{"PutRolePolicy=Throttling", "PutRolePolicy=Throttling", "PutRolePolicy="}, codes); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
