package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	releaseARN = "arn:aws:states:us-east-1:123456789012:execution:ec2-isolation-release:rel-7"
	recordKey  = "incidents/123456789012/us-east-1/" + instance + ".json"
)

// released is the input of the release's "Notify success".
var (
	releaseStarted = time.Date(2026, 11, 23, 9, 0, 0, 250e6, time.UTC)
	releasedUntil  = time.Date(2026, 11, 24, 21, 0, 1, 0, time.UTC)
)

func released() workflow.NotifyInput {
	pre := succeeded().Record
	return workflow.NotifyInput{
		Workflow: workflow.WorkflowRelease, Outcome: workflow.OutcomeSucceeded,
		ExecutionName: "rel-7", ExecutionARN: releaseARN, InstanceID: instance,
		Incident: &workflow.IncidentRef{
			Bucket: "ec2-isolation-incidents", Key: recordKey, VersionID: "v-after-release",
			OpenedAt: time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC), PreIsolation: workflow.PreIsolationState{Record: *pre},
		},
		RestoreGroups: &workflow.StepChanges{Changes: []workflow.Change{
			{Step: "Restore security groups", Resource: "eni-0a1", Action: "ModifyNetworkInterfaceAttribute", Detail: "sg-0isoa -> sg-0web,sg-0db"},
		}},
		RestoreProfile: &workflow.StepChanges{Changes: []workflow.Change{
			{Step: "Restore instance profile", Resource: instance, Action: "ReplaceIamInstanceProfileAssociation", Detail: "isolation -> web"},
		}},
		LiftRevocation: &workflow.RevokeOutput{Roles: []workflow.RevokedRole{{RoleName: "web-role", PolicyName: "ec2-isolation-revoke-" + instance, Changed: true,
			DeniedBefore: &releaseStarted, Until: &releasedUntil}}},
		RestoreEvidence: &workflow.StepChanges{
			Changes: []workflow.Change{{Step: "Restore evidence settings", Resource: "web-asg", Action: "AttachInstances"}},
			Skipped: []string{"target group tg-gone no longer exists"},
		},
	}
}

func TestNotifyReleaseSuccess(t *testing.T) {
	srv := start(t, scenario())
	out, err := newHandler(t, srv).Handle(context.Background(), released())
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	p := onlyMessage(t, srv)
	if out.MessageID != p.msg.MessageID {
		t.Errorf("message id %q, published %q", out.MessageID, p.msg.MessageID)
	}
	containsAll(t, "subject", p.msg.Subject, "release SUCCEEDED", instance, "released")
	containsAll(t, "email", p.email, "RELEASED", "rel-7",
		"s3://ec2-isolation-incidents/"+recordKey, "v-after-release", "2026-11-22T10:00:01Z",
		"ModifyNetworkInterfaceAttribute eni-0a1: sg-0isoa -> sg-0web,sg-0db", "ReplaceIamInstanceProfileAssociation",
		"role web-role: inline policy ec2-isolation-revoke-"+instance+" replaced: fresh credentials work",
		// Issue 13 item 1: until when the policy stays, and how it goes.
		"still denies the instance's credentials issued before 2026-11-23T09:00:00.25Z", "stays until 2026-11-24T21:00:01Z",
		"isolation cleanup", "aws iam delete-role-policy --role-name web-role --policy-name ec2-isolation-revoke-"+instance,
		"AttachInstances web-asg",
		"skipped: target group tg-gone no longer exists",
		"PRE-ISOLATION STATE (what this release restores)", `"sg-0web"`)
	containsAll(t, "chat title", p.chatbot.Content.Title, ":unlock:", instance, "released")
	containsAll(t, "chat description", p.chatbot.Content.Description, "released", "`eni-0a1`", "`web-role`")
	for what, text := range map[string]string{"email": p.email, "chat": p.chatbot.Content.Description, "subject": p.msg.Subject} {
		for _, wrong := range []string{"ISOLATED", "isolated by execution", "NOT confirmed", "tracked"} {
			if strings.Contains(text, wrong) {
				t.Errorf("%s of a release says %q:\n%s", what, wrong, text)
			}
		}
	}
	if p.chatbot.Metadata.EventType != "EC2ReleaseSucceeded" || p.chatbot.Metadata.ThreadID != "ec2-isolation-"+instance {
		t.Errorf("metadata %+v: want the release event in the instance's thread", p.chatbot.Metadata)
	}
}

func TestNotifyReleaseFailure(t *testing.T) {
	srv := start(t, scenario())
	in := released()
	in.Outcome = workflow.OutcomeFailed
	in.RestoreProfile, in.LiftRevocation = nil, nil
	in.Failures = []workflow.Failure{{State: "Restore instance profile", Error: "AssociationPending", Cause: `{"errorMessage":"instance i-0123456789abcdef0: profile association iip-1 is associating","errorType":"AssociationPending"}`}}
	_, err := newHandler(t, srv).Handle(context.Background(), in)
	var rf *steperr.ReleaseFailed
	if !errors.As(err, &rf) {
		t.Fatalf("error = %#v, want ReleaseFailed", err)
	}
	var iso *steperr.IsolationFailed
	if errors.As(err, &iso) {
		t.Errorf("a release failure reported as IsolationFailed")
	}
	containsAll(t, "ReleaseFailed summary", rf.Summary, "Restore instance profile", "AssociationPending", instance)
	p := onlyMessage(t, srv)
	containsAll(t, "subject", p.msg.Subject, "release FAILED", instance, "Restore instance profile")
	containsAll(t, "email", p.email, "Release of EC2 instance", "FAILED", "partly restored", "is associating",
		"aws stepfunctions redrive-execution --execution-arn "+releaseARN, "ModifyNetworkInterfaceAttribute eni-0a1")
	if strings.Contains(p.email, "NOT confirmed") {
		t.Errorf("release failure warns about network containment:\n%s", p.email)
	}
	if p.chatbot.Metadata.EventType != "EC2ReleaseFailed" {
		t.Errorf("event type %q", p.chatbot.Metadata.EventType)
	}
}

// A release refused by "Read incident record" (never isolated, already released, record lost): one
// notification that says nothing changed, no redrive advice, and ReleaseFailed.
func TestNotifyReleaseRefused(t *testing.T) {
	srv := start(t, scenario())
	in := workflow.NotifyInput{
		Workflow: workflow.WorkflowRelease, Outcome: workflow.OutcomeFailed, ExecutionName: "rel-8", ExecutionARN: releaseARN,
		Event: &workflow.TagEvent{Resources: []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instance}},
		Failures: []workflow.Failure{{State: "Read incident record", Error: "NotIsolated",
			Cause: `{"errorMessage":"instance i-0123456789abcdef0 cannot be released: this stack never isolated it (no incident record)","errorType":"NotIsolated"}`}},
	}
	_, err := newHandler(t, srv).Handle(context.Background(), in)
	var rf *steperr.ReleaseFailed
	if !errors.As(err, &rf) {
		t.Fatalf("error = %#v, want ReleaseFailed", err)
	}
	p := onlyMessage(t, srv)
	containsAll(t, "email", p.email, instance, "refused: nothing was changed", "never isolated it", "NotIsolated")
	containsAll(t, "chat description", p.chatbot.Content.Description, "nothing was changed", "`NotIsolated`")
	if strings.Contains(p.email, "redrive-execution") || len(p.chatbot.Content.NextSteps) != 0 {
		t.Errorf("a refused release advises a redrive:\n%s\n%q", p.email, p.chatbot.Content.NextSteps)
	}
}

// The isolation's new outputs: where the incident record is, the credential revocation, evidence preservation.
func TestNotifyIsolationReportsRecordRevocationAndEvidence(t *testing.T) {
	srv := start(t, scenario())
	in := succeeded()
	in.Incident = &workflow.IncidentRef{Bucket: "ec2-isolation-incidents", Key: recordKey, VersionID: "v-first", Opened: true}
	in.Revoke = &workflow.RevokeOutput{
		Roles:   []workflow.RevokedRole{{RoleName: "web-role", PolicyName: "ec2-isolation-revoke-" + instance, Changed: true}},
		Skipped: []string{"role other/db-role is outside the stack's revocable roles (REVOCABLE_ROLES=app/*): not revoked"},
	}
	in.Preserve = &workflow.StepChanges{Changes: []workflow.Change{
		{Step: "Preserve evidence", Resource: instance, Action: "ModifyInstanceAttribute", Detail: "termination protection on"},
		{Step: "Preserve evidence", Resource: "web-asg", Action: "DetachInstances", Detail: "desired capacity kept"},
	}}
	if _, err := newHandler(t, srv).Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	p := onlyMessage(t, srv)
	containsAll(t, "email", p.email, "ISOLATED", "s3://ec2-isolation-incidents/"+recordKey, "version v-first", "opened by this execution",
		"role web-role: inline policy ec2-isolation-revoke-"+instance+" denies the instance's credentials",
		"skipped: role other/db-role is outside", "ModifyInstanceAttribute "+instance+": termination protection on",
		"DetachInstances web-asg: desired capacity kept")
	containsAll(t, "chat description", p.chatbot.Content.Description, "`s3://ec2-isolation-incidents/"+recordKey+"`", "`web-role`", "`DetachInstances`")
}

func TestNotifyRefusesAnUnknownWorkflow(t *testing.T) {
	srv := start(t, scenario())
	in := succeeded()
	in.Workflow = "rollback"
	_, err := newHandler(t, srv).Handle(context.Background(), in)
	var ii *steperr.InvalidInput
	if !errors.As(err, &ii) {
		t.Errorf("error = %#v, want InvalidInput", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages published", n)
	}
}
