package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Issue 12 case 2: the notification reports what the final read-back saw, not what the steps meant to do. A
// redrive's Apply changed nothing and reports the record's groups; the message must not present them as the
// ENIs' groups.
func TestNotifyReportsTheReadBack(t *testing.T) {
	in := succeeded()
	in.RedriveCount = 1
	in.Apply = &workflow.ApplyGroupsOutput{NetworkInterfaces: []workflow.AppliedInterface{
		{ID: "eni-0a1", VpcID: "vpc-0a1", Before: []string{"sg-0web", "sg-0db"}, After: []string{"sg-0web", "sg-0db"}},
		{ID: "eni-0b2", VpcID: "vpc-0b2", Before: []string{"sg-0mgmt"}, After: []string{"sg-0mgmt"}},
	}}
	in.Verify = &workflow.VerifyOutput{
		Contained: true, Rounds: 2,
		NetworkInterfaces: []workflow.VerifiedInterface{
			{ID: "eni-0a1", VpcID: "vpc-0a1", Groups: []string{"sg-0isoa"}, IsolationGroupID: "sg-0isoa"},
			{ID: "eni-0b2", VpcID: "vpc-0b2", Groups: []string{"sg-0isob"}, IsolationGroupID: "sg-0isob"},
			{ID: "eni-0c3", VpcID: "vpc-0b2", Groups: []string{"sg-0isob"}, IsolationGroupID: "sg-0isob"},
		},
		Groups: []workflow.VerifiedGroup{{VpcID: "vpc-0a1", GroupID: "sg-0isoa"}, {VpcID: "vpc-0b2", GroupID: "sg-0isob"}},
		Associations: []workflow.ProfileAssociation{
			{AssociationID: "iip-assoc-0new", ProfileARN: "arn:aws:iam::123456789012:instance-profile/isolation", State: "associated"}},
		Open:    []string{"sg-0isoa has 1 ingress rule (tcp 22 from 0.0.0.0/0)", "eni-0c3 carries sg-0mgmt, not only the isolation group sg-0isob of vpc-0b2"},
		Changes: []workflow.Change{{Step: "Verify containment", Resource: "sg-0isoa", Action: "RevokeSecurityGroupIngress", Detail: "revoked inbound rules from 0.0.0.0/0"}},
		Added:   []workflow.NetworkInterface{{ID: "eni-0c3", VpcID: "vpc-0b2", Groups: []string{"sg-0mgmt"}}},
	}
	srv := start(t, scenario())
	if _, err := newHandler(t, srv).Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	p := onlyMessage(t, srv)
	containsAll(t, "email", p.email, "read back at the end: contained",
		"Read back at the end (Verify containment): contained, after containing it again (2 read-backs)",
		"eni-0a1 in vpc-0a1: sg-0isoa", "eni-0c3 in vpc-0b2: sg-0isob", "isolation group sg-0isoa of vpc-0a1: no rule in or out",
		"instance profile: arn:aws:iam::123456789012:instance-profile/isolation (associated)",
		"found open, contained again: sg-0isoa has 1 ingress rule (tcp 22 from 0.0.0.0/0)",
		"changed: RevokeSecurityGroupIngress sg-0isoa", "kept for the release: eni-0c3 in vpc-0b2 with sg-0mgmt",
		"no change by this run")
	for _, wrong := range []string{"sg-0web, sg-0db -> sg-0web, sg-0db", "already isolated"} {
		if strings.Contains(p.email, wrong) {
			t.Errorf("email says %q: Apply's record of an unchanged ENI presented as its groups\n%s", wrong, p.email)
		}
	}
	containsAll(t, "chat description", p.chatbot.Content.Description, "Verify containment", "`eni-0c3`", "`sg-0isob`")
}

// A failure at the read-back says plainly that the instance is not contained.
func TestNotifyNotContained(t *testing.T) {
	in := succeeded()
	in.Outcome, in.Snapshot = workflow.OutcomeFailed, nil
	in.Failures = []workflow.Failure{{State: "Verify containment", Error: "NotContained",
		Cause: `{"errorMessage":"instance i-0123456789abcdef0 is NOT contained: eni-0a1 carries sg-0web, sg-0isoa, not only the isolation group sg-0isoa of vpc-0a1","errorType":"NotContained"}`}}
	srv := start(t, scenario())
	_, err := newHandler(t, srv).Handle(context.Background(), in)
	var fe *steperr.IsolationFailed
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want IsolationFailed", err)
	}
	p := onlyMessage(t, srv)
	containsAll(t, "email", p.email, "WARNING: the instance is NOT contained", "eni-0a1 carries sg-0web, sg-0isoa")
	containsAll(t, "chat description", p.chatbot.Content.Description, "NOT contained")
}
