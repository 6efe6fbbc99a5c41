package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// SimulatePrincipalPolicy through the SDK: each action on each resource decided from the role's inline policies
// (explicit deny over allow over implicit deny), the condition keys not given listed per resource; an entity or
// a managed policy the simulator does not know is an error, never a guess.
func TestSimulatePrincipalPolicy(t *testing.T) {
	sc := baseScenario()
	sc.Roles = []Role{
		{Name: "responder", Path: "/team/", InlinePolicies: map[string]PolicyDocument{
			"a": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:*","sns:Pub*"],"Resource":"*"}]}`,
			"b": `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ec2:TerminateInstances","Resource":"*"}}`,
			"c": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/q",
				"Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}]}`}},
		{Name: "managed", AttachedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}},
	}
	s, _, _ := start(t, sc)
	c := iam.NewFromConfig(s.AWSConfig("AKIDTEST"))
	ctx := context.Background()
	sim := func(source string, actions, resources []string, ctxKeys ...iamtypes.ContextEntry) ([]string, error) {
		out, err := c.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(source),
			ActionNames: actions, ResourceArns: resources, ContextEntries: ctxKeys})
		if err != nil {
			return nil, err
		}
		var got []string
		for _, r := range out.EvaluationResults {
			line := aws.ToString(r.EvalActionName) + " " + aws.ToString(r.EvalResourceName) + " " + string(r.EvalDecision)
			for _, m := range r.MissingContextValues {
				line += " missing " + m
			}
			for _, rs := range r.ResourceSpecificResults {
				for _, m := range rs.MissingContextValues {
					line += " resource-missing " + m
				}
			}
			got = append(got, line)
		}
		return got, nil
	}
	role := "arn:aws:iam::123456789012:role/team/responder"
	got, err := sim(role, []string{"ec2:ModifyNetworkInterfaceAttribute", "EC2:TerminateInstances", "sns:Publish", "s3:PutObject", "iam:PassRole"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ec2:ModifyNetworkInterfaceAttribute * allowed", "EC2:TerminateInstances * explicitDeny", "sns:Publish * allowed",
		"s3:PutObject * implicitDeny", "iam:PassRole * implicitDeny missing iam:PassedToService"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("no resources (-want +got):\n%s", diff)
	}
	q := "arn:aws:iam::123456789012:role/q"
	got, err = sim(role, []string{"iam:PassRole"}, []string{q, "arn:aws:iam::123456789012:role/other"})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"iam:PassRole " + q + " implicitDeny resource-missing iam:PassedToService", "iam:PassRole arn:aws:iam::123456789012:role/other implicitDeny"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("two resources (-want +got):\n%s", diff)
	}
	got, err = sim(role, []string{"iam:PassRole"}, []string{q}, iamtypes.ContextEntry{ContextKeyName: aws.String("iam:PassedToService"),
		ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{"ec2.amazonaws.com"}})
	if err != nil || len(got) != 1 || got[0] != "iam:PassRole "+q+" allowed" {
		t.Errorf("with the context key: %v %v, want allowed", got, err)
	}
	for source, code := range map[string]string{
		"arn:aws:iam::123456789012:user/AKIDTEST":  "NoSuchEntity",
		"arn:aws:iam::123456789012:role/responder": "NoSuchEntity", // wrong path
		"arn:aws:iam::123456789012:role/managed":   "NotImplemented",
		"not-an-arn":                               "InvalidInput",
	} {
		_, err := sim(source, []string{"ec2:DescribeInstances"}, nil)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("%s: %v, want %s", source, err, code)
		}
	}
	for _, call := range s.Calls() {
		if call.Mutating {
			t.Errorf("%s counted as mutating", call.Action)
		}
	}
}
