package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	instance     = "i-0123456789abcdef0"
	topicName    = "isolation"
	topicARN     = "arn:aws:sns:us-east-1:123456789012:" + topicName
	executionARN = "arn:aws:states:us-east-1:123456789012:execution:ec2-isolation:exec-42"
)

func start(t *testing.T, sc sim.Scenario) *sim.Server {
	t.Helper()
	return simtest.Start(t, sc)
}

// newHandler is the handler with a real SDK SNS client reaching srv.
func newHandler(_ *testing.T, srv *sim.Server) *notify.Handler {
	return notify.New(sns.NewFromConfig(srv.AWSConfig("notify")), notify.Settings{TopicARN: topicARN}, slog.New(slog.DiscardHandler))
}

func scenario() sim.Scenario { return sim.Scenario{Topics: []sim.Topic{{Name: topicName}}} }

// succeeded is the input of "Notify success" after a full isolation.
func succeeded() workflow.NotifyInput {
	return workflow.NotifyInput{
		Outcome:       workflow.OutcomeSucceeded,
		ExecutionName: "exec-42",
		ExecutionARN:  executionARN,
		InstanceID:    instance,
		Record: &workflow.Record{
			InstanceID: instance, InstanceARN: "arn:aws:ec2:us-east-1:123456789012:instance/" + instance,
			Account: "123456789012", Region: "us-east-1", AvailabilityZone: "us-east-1a", State: "running",
			VpcIDs: []string{"vpc-0a1", "vpc-0b2"},
			NetworkInterfaces: []workflow.NetworkInterface{
				{ID: "eni-0a1", VpcID: "vpc-0a1", SubnetID: "subnet-0a1", Groups: []string{"sg-0web", "sg-0db"}},
				{ID: "eni-0b2", VpcID: "vpc-0b2", SubnetID: "subnet-0b1", DeviceIndex: 1, Groups: []string{"sg-0mgmt"}},
			},
			ProfileAssociation: &workflow.ProfileAssociation{AssociationID: "iip-assoc-0old", ProfileARN: "arn:aws:iam::123456789012:instance-profile/web", State: "associated"},
			ShutdownBehavior:   "stop",
			Volumes:            []workflow.Volume{{VolumeID: "vol-0a1", DeviceName: "/dev/xvda", DeleteOnTermination: true}},
			Reason:             "tag Isolate=true",
			RecordedAt:         time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		},
		Disassociate: &workflow.DisassociateOutput{Disassociated: []workflow.ProfileAssociation{
			{AssociationID: "iip-assoc-0old", ProfileARN: "arn:aws:iam::123456789012:instance-profile/web", State: "disassociating"},
		}},
		Attach: &workflow.AttachOutput{AssociationID: "iip-assoc-0new", ProfileARN: "arn:aws:iam::123456789012:instance-profile/isolation", Changed: true},
		Groups: &workflow.EnsureGroupsOutput{Groups: []workflow.VpcGroups{
			{VpcID: "vpc-0a1", IsolationGroupID: "sg-0isoa", Created: true},
			{VpcID: "vpc-0b2", IsolationGroupID: "sg-0isob"},
		}},
		Apply: &workflow.ApplyGroupsOutput{NetworkInterfaces: []workflow.AppliedInterface{
			{ID: "eni-0a1", VpcID: "vpc-0a1", Before: []string{"sg-0web", "sg-0db"}, After: []string{"sg-0isoa"}, Changed: true},
			{ID: "eni-0b2", VpcID: "vpc-0b2", Before: []string{"sg-0mgmt"}, After: []string{"sg-0isob"}, Changed: true},
		}},
		Snapshot: &workflow.SnapshotOutput{Created: true, Snapshots: []workflow.Snapshot{
			{SnapshotID: "snap-0a1", VolumeID: "vol-0a1", State: "pending"},
		}},
	}
}

// failed is the input of "Notify failure" when applying the isolation group failed and the IAM branch succeeded.
func failed() workflow.NotifyInput {
	in := succeeded()
	in.Outcome = workflow.OutcomeFailed
	in.Apply, in.Snapshot = nil, nil
	// The cause as Step Functions records a Lambda error: the function's error document.
	in.Failures = []workflow.Failure{{
		State: "Apply isolation security group", Error: "Throttled",
		Cause: `{"errorMessage":"apply isolation security group: throttled: apply isolation group sg-0isoa to eni-0a1: RequestLimitExceeded","errorType":"Throttled"}`,
	}}
	return in
}

// chatbotNotification is the custom notification schema of AWS Chatbot (Amazon Q Developer in chat
// applications): https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html
type chatbotNotification struct {
	Version string `json:"version"`
	Source  string `json:"source"`
	ID      string `json:"id"`
	Content struct {
		TextType    string   `json:"textType"`
		Title       string   `json:"title"`
		Description string   `json:"description"`
		NextSteps   []string `json:"nextSteps"`
		Keywords    []string `json:"keywords"`
	} `json:"content"`
	Metadata struct {
		ThreadID          string            `json:"threadId"`
		Summary           string            `json:"summary"`
		EventType         string            `json:"eventType"`
		RelatedResources  []string          `json:"relatedResources"`
		AdditionalContext map[string]string `json:"additionalContext"`
	} `json:"metadata"`
}

// published is the one message the topic received, per protocol.
type published struct {
	msg     sim.Message
	email   string
	chatbot chatbotNotification
}

func onlyMessage(t *testing.T, srv *sim.Server) published {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	m := msgs[0]
	if m.TopicArn != topicARN || m.MessageStructure != "json" {
		t.Errorf("published to %q with structure %q, want %s json", m.TopicArn, m.MessageStructure, topicARN)
	}
	if m.Subject == "" || len(m.Subject) >= 100 || strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject %q breaks the SNS rules (1-99 characters, one line)", m.Subject)
	}
	var bodies map[string]string
	if err := json.Unmarshal([]byte(m.Message), &bodies); err != nil {
		t.Fatalf("message is not a JSON object of strings: %v\n%s", err, m.Message)
	}
	p := published{msg: m, email: bodies["email"]}
	if p.email == "" {
		t.Errorf("no email body")
	}
	for _, proto := range []string{"default", "https"} {
		var n chatbotNotification
		dec := json.NewDecoder(strings.NewReader(bodies[proto]))
		dec.DisallowUnknownFields() // nothing outside the documented schema
		if err := dec.Decode(&n); err != nil {
			t.Fatalf("%s body is not a Chatbot custom notification: %v\n%s", proto, err, bodies[proto])
		}
		if n.Version != "1.0" || n.Source != "custom" || n.Content.TextType != "client-markdown" ||
			n.Content.Title == "" || n.Content.Description == "" {
			t.Errorf("%s body lacks required fields: %+v", proto, n)
		}
		if proto == "default" {
			p.chatbot = n
		} else if diff := cmp.Diff(p.chatbot, n); diff != "" {
			t.Errorf("https and default bodies differ:\n%s", diff)
		}
	}
	return p
}

func containsAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not mention %q:\n%s", what, w, text)
		}
	}
}

func TestNotifySuccess(t *testing.T) {
	srv := start(t, scenario())
	out, err := newHandler(t, srv).Handle(context.Background(), succeeded())
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	p := onlyMessage(t, srv)
	if out.MessageID == "" || out.MessageID != p.msg.MessageID || out.ResumeAt != "" {
		t.Errorf("output %+v, want the message id %q", out, p.msg.MessageID)
	}
	containsAll(t, "email", p.email, instance, "exec-42", "ISOLATED",
		"eni-0a1", "sg-0web, sg-0db -> sg-0isoa", "eni-0b2", "sg-0mgmt -> sg-0isob",
		"instance-profile/web", "instance-profile/isolation", "snap-0a1", "vol-0a1", "tag Isolate=true",
		`"networkInterfaces"`) // the pre-isolation record
	containsAll(t, "chat description", p.chatbot.Content.Description, "`"+instance+"`", "`eni-0a1`", "`sg-0isob`", "`snap-0a1`")
	containsAll(t, "chat title", p.chatbot.Content.Title, ":white_check_mark:", instance)
	containsAll(t, "subject", p.msg.Subject, instance, "SUCCEEDED")
	if p.chatbot.Metadata.ThreadID == "" || !strings.Contains(strings.Join(p.chatbot.Metadata.RelatedResources, " "), executionARN) {
		t.Errorf("metadata %+v: want a thread id and the execution among the related resources", p.chatbot.Metadata)
	}
}

func TestNotifyFailure(t *testing.T) {
	srv := start(t, scenario())
	out, err := newHandler(t, srv).Handle(context.Background(), failed())
	var fe *steperr.IsolationFailed
	if !errors.As(err, &fe) {
		t.Fatalf("error = %#v, want IsolationFailed", err)
	}
	containsAll(t, "IsolationFailed summary", fe.Summary, "Apply isolation security group", "Throttled", instance)
	if out.ResumeAt != "" {
		t.Errorf("ResumeAt = %q on a first failure", out.ResumeAt)
	}
	p := onlyMessage(t, srv)
	redrive := "aws stepfunctions redrive-execution --execution-arn " + executionARN
	containsAll(t, "email", p.email, instance, "FAILED", "Apply isolation security group", "Throttled",
		"RequestLimitExceeded", "NOT confirmed", redrive,
		"instance-profile/isolation", // what did succeed
		"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"+executionARN)
	containsAll(t, "chat description", p.chatbot.Content.Description, "`Apply isolation security group`", "`Throttled`", "NOT confirmed",
		"`apply isolation security group: throttled: apply isolation group sg-0isoa to eni-0a1: RequestLimitExceeded`")
	for what, text := range map[string]string{"email": p.email, "chat": p.chatbot.Content.Description, "summary": fe.Summary} {
		if strings.Contains(text, "errorMessage") {
			t.Errorf("%s shows the raw error document instead of its message:\n%s", what, text)
		}
	}
	containsAll(t, "chat next steps", strings.Join(p.chatbot.Content.NextSteps, "\n"), redrive)
	containsAll(t, "subject", p.msg.Subject, "FAILED", instance)
}

func TestNotifyFailureOfBothBranches(t *testing.T) {
	srv := start(t, scenario())
	in := failed()
	in.Attach = nil
	in.Failures = append(in.Failures, workflow.Failure{State: "Attach isolation profile", Error: "ProfileNotReady", Cause: "isolation instance profile not usable"})
	_, err := newHandler(t, srv).Handle(context.Background(), in)
	var fe *steperr.IsolationFailed
	if !errors.As(err, &fe) {
		t.Fatalf("error = %#v, want IsolationFailed", err)
	}
	containsAll(t, "IsolationFailed summary", fe.Summary, "Apply isolation security group", "Attach isolation profile", "ProfileNotReady")
	containsAll(t, "email", onlyMessage(t, srv).email, "Apply isolation security group", "Attach isolation profile", "ProfileNotReady")
}

func TestNotifyOnRedrive(t *testing.T) {
	tests := []struct {
		name         string
		redriveCount int
		failures     []int // the failures' redrive counts
		wantResume   bool
	}{
		{"first run", 0, []int{0}, false},
		{"redrive resuming", 1, []int{0}, true},
		{"redrive resuming both branches", 2, []int{1, 0}, true},
		{"failed again during the redrive", 1, []int{1}, false},
		{"one branch failed again during the redrive", 1, []int{0, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, scenario())
			in := failed()
			in.RedriveCount = tt.redriveCount
			in.Failures = nil
			for i, rc := range tt.failures {
				state := []string{"Apply isolation security group", "Attach isolation profile"}[i]
				in.Failures = append(in.Failures, workflow.Failure{State: state, Error: "Throttled", Cause: "x", RedriveCount: rc})
			}
			out, err := newHandler(t, srv).Handle(context.Background(), in)
			if tt.wantResume {
				if err != nil || out.ResumeAt != "Apply isolation security group" {
					t.Fatalf("got %+v, %v; want ResumeAt the first failed state", out, err)
				}
				if n := len(srv.Calls()); n != 0 {
					t.Errorf("%d calls while resuming, want none", n)
				}
				return
			}
			var fe *steperr.IsolationFailed
			if !errors.As(err, &fe) || out.ResumeAt != "" {
				t.Fatalf("got %+v, %v; want IsolationFailed", out, err)
			}
			onlyMessage(t, srv)
		})
	}
}

func TestNotifyRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*workflow.NotifyInput)
	}{
		{"unknown outcome", func(in *workflow.NotifyInput) { in.Outcome = "ABORTED" }},
		{"no outcome", func(in *workflow.NotifyInput) { in.Outcome = "" }},
		{"failed without failures", func(in *workflow.NotifyInput) { in.Outcome = workflow.OutcomeFailed }},
		{"succeeded with failures", func(in *workflow.NotifyInput) { in.Failures = failed().Failures }},
		{"failure without state", func(in *workflow.NotifyInput) {
			in.Outcome, in.Failures = workflow.OutcomeFailed, []workflow.Failure{{Error: "Throttled"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, scenario())
			in := succeeded()
			tt.edit(&in)
			_, err := newHandler(t, srv).Handle(context.Background(), in)
			var ii *steperr.InvalidInput
			if !errors.As(err, &ii) {
				t.Fatalf("error = %#v, want InvalidInput", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages published for bad input", n)
			}
		})
	}
}

// A compromised instance's owner can set its tags, and a tag value can end up in the reason or in an error's
// cause: chat must show it inert, and nothing may grow the message without bound.
func TestNotifyNeutralisesHostileContent(t *testing.T) {
	srv := start(t, scenario())
	hostile := "x` <!channel> @here [click](https://evil.example) <https://evil.example|login> *bold*\nsecond line"
	in := failed()
	in.Record.Reason = "tag Isolate=" + hostile
	in.Failures[0].State = "Apply isolation security group\n" + strings.Repeat("S", 300)
	in.Failures[0].Cause = hostile + strings.Repeat(" very long cause", 50000)
	if _, err := newHandler(t, srv).Handle(context.Background(), in); err == nil {
		t.Fatal("want IsolationFailed")
	}
	p := onlyMessage(t, srv)
	for _, text := range append([]string{p.chatbot.Content.Title, p.chatbot.Content.Description, p.chatbot.Metadata.Summary}, p.chatbot.Content.NextSteps...) {
		for _, bad := range []string{"<!channel>", "<https://evil", "@here"} {
			if strings.Contains(text, bad) {
				t.Errorf("chat text keeps %q:\n%s", bad, text)
			}
		}
	}
	// Every hostile value sits inside a code span: the spans pair up, and outside them no link syntax is left.
	outside := strings.Split(p.chatbot.Content.Description, "`")
	if len(outside)%2 != 1 {
		t.Errorf("unbalanced backticks in the description: a value closed its code span:\n%s", p.chatbot.Content.Description)
	}
	for i := 0; i < len(outside); i += 2 {
		if strings.Contains(outside[i], "](") || strings.Contains(outside[i], "evil.example") {
			t.Errorf("link outside a code span: %q", outside[i])
		}
	}
	if n := utf8.RuneCountInString(p.chatbot.Content.Description); n > 4000 {
		t.Errorf("chat description has %d characters: the cause was not truncated", n)
	}
	if n := len(p.msg.Message); n > 64<<10 {
		t.Errorf("message has %d bytes: the cause was not truncated", n)
	}
	if !strings.Contains(p.email, "second line") || strings.Contains(p.email, "\r") {
		t.Errorf("email does not keep the cause readable")
	}
}

func TestNotifySurvivesThrottling(t *testing.T) {
	sc := scenario()
	sc.Faults.Errors = []sim.ErrorFault{{Action: "Publish", Service: "sns", Code: "Throttling", FirstCalls: 1}}
	srv := start(t, sc)
	if _, err := newHandler(t, srv).Handle(context.Background(), succeeded()); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	onlyMessage(t, srv)
	if calls := srv.Calls(); len(calls) != 2 || calls[0].ErrorCode != "Throttling" {
		t.Errorf("calls %+v, want a throttled Publish then a successful one", calls)
	}
}

func TestNotifyReportsAMissingTopic(t *testing.T) {
	srv := start(t, sim.Scenario{})
	_, err := newHandler(t, srv).Handle(context.Background(), succeeded())
	var ae *steperr.AWSError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), topicARN) {
		t.Fatalf("error = %#v, want AWSError naming the topic", err)
	}
}

func TestSettingsFromEnv(t *testing.T) {
	for arn, ok := range map[string]bool{
		topicARN: true,
		"arn:aws-us-gov:sns:us-gov-west-1:123456789012:isolation": true,
		"":          false,
		"isolation": false,
		"arn:aws:sns:us-east-1:123456789012:isolation.fifo":  false,
		"arn:aws:sqs:us-east-1:123456789012:isolation":       false,
		"arn:aws:sns:us-east-1:123456789012:isolation\nmore": false,
	} {
		s, err := notify.SettingsFromEnv(func(k string) string {
			if k == notify.EnvTopicARN {
				return arn
			}
			return ""
		})
		var ce *steperr.ConfigError
		switch {
		case ok && (err != nil || s.TopicARN != arn):
			t.Errorf("TOPIC_ARN=%q: %+v, %v", arn, s, err)
		case !ok && !errors.As(err, &ce):
			t.Errorf("TOPIC_ARN=%q: error %v, want ConfigError", arn, err)
		}
	}
}
