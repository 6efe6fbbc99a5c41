package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// render publishes in through the real SNS client to the simulator and returns the email and chat bodies.
func render(t *testing.T, in workflow.NotifyInput) published {
	t.Helper()
	srv := start(t, scenario())
	_, _ = newHandler(t, srv).Handle(context.Background(), in) // FAILED answers IsolationFailed after publishing
	p := onlyMessage(t, srv)
	p.email = strings.Join(strings.Fields(p.email), " ") // the email wraps its sentences
	return p
}

func chatText(p published) string {
	return p.chatbot.Content.Description + "\n" + strings.Join(p.chatbot.Content.NextSteps, "\n")
}

func lacksAll(t *testing.T, what, text string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(text, u) {
			t.Errorf("%s mentions %q:\n%s", what, u, text)
		}
	}
}

// refusedAt is the input of "Notify failure" after "Validate and record" refused the event with errorType.
func refusedAt(state, errorType, message string) workflow.NotifyInput {
	return workflow.NotifyInput{
		Outcome: workflow.OutcomeFailed, ExecutionName: "exec-42", ExecutionARN: executionARN, InstanceID: instance,
		Event: &workflow.TagEvent{Account: "123456789012", Region: "us-east-1",
			Resources: []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instance}},
		Failures: []workflow.Failure{{State: state, Error: errorType,
			Cause: `{"errorMessage":"` + message + `","errorType":"` + errorType + `"}`}},
	}
}

// TestRefusalsDoNotAdviseARedrive (issue 12, cases 7 and 10): the input cannot change, so a redrive would fail
// the same way; the notification says what to do instead, and names an account mismatch.
func TestRefusalsDoNotAdviseARedrive(t *testing.T) {
	foreign := refusedAt("Validate and record", "InvalidEvent", "invalid event: account 210987654321 is not ...")
	foreign.Event.Account = "210987654321"
	foreign.Event.Resources = []string{"arn:aws:ec2:us-east-1:210987654321:instance/" + instance}
	for _, tt := range []struct {
		name string
		in   workflow.NotifyInput
		want []string
	}{
		{"invalid event", refusedAt("Validate and record", "InvalidEvent", "invalid event: detail-type is \\\"x\\\""),
			[]string{"nothing was changed", "a redrive reuses the same event and would be refused again", "tag it again"}},
		{"foreign account", foreign,
			[]string{"Account mismatch", "210987654321", "this stack acts in account", "123456789012"}},
		{"superseded", refusedAt("Validate and record", "Superseded", "superseded: instance "+instance+" now carries Isolate=\\\"release\\\", not Isolate=\\\"true\\\"; nothing was changed"),
			[]string{"Superseded", "no longer carries", "the current tag decides", "set the tag again", "isolation run --instance"}},
		{"unknown instance", refusedAt("Validate and record", "InstanceNotFound", "instance "+instance+" not found"),
			[]string{"No such instance in this stack's account and region", "a redrive would not find it"}},
		{"terminated instance", refusedAt("Validate and record", "InstanceNotIsolatable", "instance "+instance+" cannot be isolated: it is terminated"),
			[]string{"The instance is terminated", "nothing to contain"}},
		{"release over a concurrent isolation", func() workflow.NotifyInput {
			in := refusedAt("Record release", "IsolationInProgress", "instance "+instance+": isolation execution B is still running; the release waits for it")
			in.Workflow = workflow.WorkflowRelease
			return in
		}(), []string{"ran while this release restored it", "set the release tag again"}},
		{"release superseded", func() workflow.NotifyInput {
			in := refusedAt("Read incident record", "Superseded", "superseded")
			in.Workflow = workflow.WorkflowRelease
			return in
		}(), []string{"no longer carries the release tag", "stays isolated"}},
		{"release of an incident without pre-isolation state", func() workflow.NotifyInput {
			in := refusedAt("Read incident record", "RecordMissing", "incident record s3://b/k: the incident opened at 2026-11-22T10:00:00Z holds no pre-isolation state")
			in.Workflow = workflow.WorkflowRelease
			return in
		}(), []string{"Restore the instance BY HAND", "security groups", "every version of the incident record"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := render(t, tt.in)
			containsAll(t, "email", p.email, tt.want...)
			lacksAll(t, "email", p.email, "redrive-execution", "HOW TO RESUME")
			lacksAll(t, "chat", chatText(p), "redrive-execution", "redrive the execution")
			if tt.in.Workflow != workflow.WorkflowRelease {
				containsAll(t, "email", p.email, "The isolation was refused: nothing was changed.")
				lacksAll(t, "email", p.email, "NOT confirmed")
			}
			containsAll(t, "chat next steps", strings.Join(p.chatbot.Content.NextSteps, "\n"), tt.want[0])
		})
	}
}

// TestTerminatedMidRun (issue 12, case 10): an instance terminated while the workflow ran is reported as
// terminated, without redrive advice.
func TestTerminatedMidRun(t *testing.T) {
	in := failed()
	in.Failures = []workflow.Failure{{State: "Preserve evidence", Error: "AWSError",
		Cause: `{"errorMessage":"preserve evidence: modify disableApiTermination of i-0123456789abcdef0: api error IncorrectInstanceState: The instance 'i-0123456789abcdef0' is not in a state from which it can be modified: terminated","errorType":"AWSError"}`}}
	p := render(t, in)
	containsAll(t, "email", p.email, "TERMINATED", "nothing left to contain", "A redrive cannot help")
	containsAll(t, "chat", chatText(p), "TERMINATED")
	lacksAll(t, "email", p.email, "redrive-execution")
	lacksAll(t, "chat", chatText(p), "redrive-execution")
}

// verified is a success whose read-back found an ENI attached since Validate and a rule added to an isolation
// group, contained both again, and left the old profile association disassociating.
func verified() workflow.NotifyInput {
	in := succeeded()
	in.Verify = &workflow.VerifyOutput{
		Contained: true, Rounds: 2,
		NetworkInterfaces: []workflow.VerifiedInterface{
			{ID: "eni-0a1", VpcID: "vpc-0a1", Groups: []string{"sg-0isoa"}, IsolationGroupID: "sg-0isoa"},
			{ID: "eni-0b2", VpcID: "vpc-0b2", Groups: []string{"sg-0isob"}, IsolationGroupID: "sg-0isob"},
			{ID: "eni-0c3", VpcID: "vpc-0b2", Groups: []string{"sg-0isob"}, IsolationGroupID: "sg-0isob"},
		},
		Groups: []workflow.VerifiedGroup{{VpcID: "vpc-0a1", GroupID: "sg-0isoa"}, {VpcID: "vpc-0b2", GroupID: "sg-0isob"}},
		Associations: []workflow.ProfileAssociation{
			{AssociationID: "iip-assoc-0new", ProfileARN: "arn:aws:iam::123456789012:instance-profile/isolation", State: "associated"},
			{AssociationID: "iip-assoc-0old", ProfileARN: "arn:aws:iam::123456789012:instance-profile/web", State: "disassociating"},
		},
		Added: []workflow.NetworkInterface{{ID: "eni-0c3", VpcID: "vpc-0b2", Groups: []string{"sg-0mgmt"}}},
		Open:  []string{"eni-0c3 carries sg-0mgmt", "sg-0isoa has 1 inbound rule"},
	}
	return in
}

// TestNotificationReportsTheReadBack (issue 12, cases 2 and 10): the notification says what the final read-back
// saw (each ENI and its groups now, each isolation group's rules, the profile associations, what was open and
// contained again); an association being disassociated is not attached.
func TestNotificationReportsTheReadBack(t *testing.T) {
	p := render(t, verified())
	containsAll(t, "email", p.email, "Read back at the end (2 read-backs): CONTAINED",
		"eni-0c3 in vpc-0b2 carries sg-0isob: only its VPC's isolation group",
		"isolation group sg-0isoa of vpc-0a1: no rule",
		"instance profile arn:aws:iam::123456789012:instance-profile/isolation: attached (associated)",
		"instance profile arn:aws:iam::123456789012:instance-profile/web: NOT attached (disassociating)",
		"attached since the start: eni-0c3", "contained again", "sg-0isoa has 1 inbound rule")
	containsAll(t, "chat", chatText(p), "NOT attached (disassociating)", "`eni-0c3`", "contained again")
	lacksAll(t, "email", p.email, "web: attached")
}

// TestRedriveSuccessReportsWhatIsNotWhatWasMeant (issue 12, case 2): on a redrive, Apply finds the ENIs already
// on the isolation group; the notification must not list the record's original groups as if they had just been
// replaced.
func TestRedriveSuccessReportsWhatIsNotWhatWasMeant(t *testing.T) {
	in := succeeded()
	in.RedriveCount = 1
	for i := range in.Apply.NetworkInterfaces {
		in.Apply.NetworkInterfaces[i].Changed = false
	}
	p := render(t, in)
	containsAll(t, "email", p.email, "eni-0a1 in vpc-0a1: already on sg-0isoa, not changed")
	lacksAll(t, "email", p.email, "sg-0web, sg-0db -> sg-0isoa", "(already isolated)")
	lacksAll(t, "chat", chatText(p), "`sg-0web`, `sg-0db` → `sg-0isoa`")
}

// TestForeignGroupAndSpotAreNamed (issue 12, cases 3 and 6): a foreign group with the isolation group's name is
// named with the group used instead; evidence parts a Spot Instance cannot have are shown skipped, with why.
func TestForeignGroupAndSpotAreNamed(t *testing.T) {
	in := succeeded()
	in.Groups.Groups[1].ForeignGroupID = "sg-0foreign"
	in.Groups.Groups[1].IsolationGroupID = "sg-0derived"
	in.Record.InstanceLifecycle = "spot"
	in.Preserve = &workflow.StepChanges{
		Changes: []workflow.Change{{Step: "Preserve evidence", Resource: instance, Action: "ModifyInstanceAttribute", Detail: "instanceInitiatedShutdownBehavior terminate -> stop"}},
		Skipped: []string{"termination protection: EC2 refuses it for Spot Instances (UnsupportedOperation)"},
	}
	p := render(t, in)
	containsAll(t, "email", p.email,
		"Foreign group: sg-0foreign in vpc-0b2 has the isolation group's name but is not ec2-isolation's",
		"sg-0derived (a derived name, tagged as managed) was used instead",
		"skipped: termination protection: EC2 refuses it for Spot Instances",
		"Spot Instance: EC2 refuses termination protection")
	containsAll(t, "chat", chatText(p), "`sg-0foreign`", "termination protection: EC2 refuses it for Spot Instances")
}

// TestMissingPreIsolationStateIsWarned (issue 12, case 1): an incident that holds no genuine pre-isolation state
// says so in the isolation's notification, with what it means for the release.
func TestMissingPreIsolationStateIsWarned(t *testing.T) {
	in := succeeded()
	in.Incident = &workflow.IncidentRef{Bucket: "b", Key: "incidents/123456789012/us-east-1/" + instance + ".json",
		PreIsolation: workflow.PreIsolationState{Record: *in.Record,
			Missing: "every observation of this incident already showed isolation artifacts (eni-0a1 carries the isolation group sg-0isoa)"}}
	p := render(t, in)
	containsAll(t, "email", p.email, "WARNING: the pre-isolation state is unknown", "eni-0a1 carries the isolation group sg-0isoa",
		"A release will be refused", "unknown: every observation")
	containsAll(t, "chat", chatText(p), "the pre-isolation state is unknown")
}

// TestNotContainedIsTheHeadline (issue 12, case 2): a read-back that still finds the instance open fails the
// execution with NotContained; subject, email and chat title say NOT contained, not only the cause.
func TestNotContainedIsTheHeadline(t *testing.T) {
	in := failed()
	in.Apply = succeeded().Apply
	in.Failures = []workflow.Failure{{State: "Verify containment", Error: "NotContained",
		Cause: `{"errorMessage":"instance i-0123456789abcdef0 is NOT contained: sg-0isoa has 1 inbound rule","errorType":"NotContained"}`}}
	p := render(t, in)
	containsAll(t, "subject", p.msg.Subject, "NOT contained", instance)
	containsAll(t, "email", p.email, "WARNING: the instance is NOT contained", "sg-0isoa has 1 inbound rule")
	containsAll(t, "chat title", p.chatbot.Content.Title, "NOT contained")
	containsAll(t, "chat", chatText(p), "NOT contained")
}
