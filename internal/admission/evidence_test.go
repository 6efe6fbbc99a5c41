package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

const evidenceMachine = "ec2-isolation-evidence"

// job is an SQS message of the evidence queue, as "Queue instance settings" sends it (Step Functions serialises
// the MessageBody object): stage 2 of the isolation execution tag-0000000k-event.
func job(k int) events.SQSMessage {
	return events.SQSMessage{MessageId: fmt.Sprintf("job-%d", k), Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		Body: fmt.Sprintf(`{"evidenceJob":{"instanceId":"i-000000000000000%d","isolationExecution":"tag-0000000%d-event","record":{"instanceId":"i-000000000000000%d","volumes":[]}}}`, k, k, k)}
}

// jobInput is the job object inside the message: the evidence execution's input.
func jobInput(t *testing.T, m events.SQSMessage) string {
	t.Helper()
	var body struct{ EvidenceJob json.RawMessage }
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
		t.Fatal(err)
	}
	return string(body.EvidenceJob)
}

// evidenceStarted lists the executions of the evidence machine, in start order (those the test added included).
func evidenceStarted(srv *sim.Server) []sim.Execution {
	var out []sim.Execution
	for _, e := range srv.Executions() {
		if e.StateMachineARN == srv.StateMachineARN(evidenceMachine) {
			out = append(out, e)
		}
	}
	return out
}

// twoStage is a simulator with both machines, their executions RUNNING until the test ends them, and a starter
// with isolation window iso and evidence window ev whose log is captured as JSON lines.
func twoStage(t *testing.T, iso, ev int, sleep func() error) (*sim.Server, *admission.Handler, *bytes.Buffer) {
	t.Helper()
	srv := start(t)
	srv.SetStateMachine(evidenceMachine, nil)
	var logs bytes.Buffer
	h, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("admission-starter")), admission.Settings{
		StateMachineARN: srv.StateMachineARN(machine), Window: iso,
		EvidenceStateMachineARN: srv.StateMachineARN(evidenceMachine), EvidenceWindow: ev,
		MaxWait: 2 * time.Second, Poll: time.Second,
		Sleep: func(context.Context, time.Duration) error { return sleep() }},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return srv, h, &logs
}

func noWait() error { return nil }

// logLines decodes the captured JSON log.
func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// A batch holding both kinds admits each against its own window: with one of an evidence window of two running,
// the first job starts (named after its isolation execution, its input the job object) and the second goes back
// to the queue, while both tag events start on the isolation machine.
func TestEachKindAgainstItsOwnWindow(t *testing.T) {
	srv, h, _ := twoStage(t, 10, 2, noWait)
	srv.AddExecution(evidenceMachine, "tag-earlier", "{}")
	ev := events.SQSEvent{Records: []events.SQSMessage{tagEvent(1), job(1), job(2), tagEvent(2)}}
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"job-2"}) {
		t.Errorf("batch item failures %v, want [job-2] (the evidence window full)", f)
	}
	evidence := evidenceStarted(srv)
	if len(evidence) != 2 || evidence[1].Name != "tag-00000001-event" || evidence[1].Input != jobInput(t, job(1)) {
		t.Errorf("evidence executions %+v, want the earlier one and tag-00000001-event with the job as input", evidence)
	}
	if got := started(srv); len(got) != 2 || got[0].StateMachineARN != srv.StateMachineARN(machine) ||
		got[0].Name != "tag-00000001-event" || got[1].Name != "tag-00000002-event" {
		t.Errorf("isolation executions %+v, want both tag events', in order", got)
	}
}

// A full isolation window holds back tag events only: a job still starts, and the reverse.
func TestAFullWindowHoldsBackItsKindOnly(t *testing.T) {
	srv, h, _ := twoStage(t, 1, 1, noWait)
	earlier := srv.AddExecution(machine, "earlier-isolation", "{}")
	resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{tagEvent(1), job(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"msg-1"}) {
		t.Errorf("batch item failures %v, want [msg-1]: the isolation window is full, the evidence one is not", f)
	}
	if e := evidenceStarted(srv); len(e) != 1 || e[0].Name != "tag-00000001-event" {
		t.Errorf("evidence executions %+v, want the job's", e)
	}

	srv.FinishExecution(earlier, "SUCCEEDED") // room for one isolation; the job's evidence execution runs on
	resp, err = h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(2), tagEvent(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"job-2"}) {
		t.Errorf("batch item failures %v, want [job-2]: now the evidence window is full", f)
	}
	if got := started(srv); len(got) != 1 || got[0].Name != "tag-00000002-event" {
		t.Errorf("isolation executions %+v, want tag-00000002-event's", got)
	}
}

// Room made in the evidence window while the starter waits is used at once.
func TestJobUsesRoomMadeWhileWaiting(t *testing.T) {
	var srv *sim.Server
	var first string
	srv, h, _ := twoStage(t, 10, 1, func() error { srv.FinishExecution(first, "SUCCEEDED"); return nil })
	first = srv.AddExecution(evidenceMachine, "tag-earlier", "{}")
	resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1)}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, failed(resp))
	}
	if e := evidenceStarted(srv); len(e) != 2 || e[1].Name != "tag-00000001-event" {
		t.Errorf("evidence executions %+v", e)
	}
}

// A redelivered job starts nothing twice: while its execution runs (same name and input: the same execution) and
// after it ended (ExecutionAlreadyExists), the message is done.
func TestRedeliveredJobStartsNothingTwice(t *testing.T) {
	srv, h, _ := twoStage(t, 10, 10, noWait)
	for round := range 2 {
		if resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1)}}); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("round %d: %v, failures %v", round, err, failed(resp))
		}
	}
	e := evidenceStarted(srv)
	if len(e) != 1 {
		t.Fatalf("%d evidence executions for one job delivered twice", len(e))
	}
	srv.FinishExecution(e[0].ARN, "FAILED") // a failed evidence execution is redriven, not started again
	if resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1)}}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the execution ended: %v, failures %v", err, failed(resp))
	}
	if e := evidenceStarted(srv); len(e) != 1 {
		t.Errorf("%d evidence executions after a third delivery", len(e))
	}
}

// A malformed job starts nothing and goes back to the queue (so that SQS moves it to the dead-letter queue after
// maxReceiveCount receives: never dropped, never retried without end), with an error line that says why, names
// the message, its receive count and what it can of the instance and execution; the good messages around it
// start.
func TestMalformedJobGoesBackAndSaysWhy(t *testing.T) {
	srv, h, logs := twoStage(t, 10, 10, noWait)
	bad := []struct{ body, why string }{
		{`{"evidenceJob":`, "not JSON"},
		{`{"evidenceJob":{"isolationExecution":"tag-x"}}`, "no instanceId"},
		{`{"evidenceJob":{"instanceId":"i-0000000000000009","isolationExecution":7}}`, "no isolationExecution"},
		{`{"evidenceJob":"i-0000000000000009"}`, "not a JSON object"},
		{`not json`, "not JSON"},
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{job(1)}}
	var want []string
	for i, b := range bad {
		id := fmt.Sprintf("bad-%d", i)
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, Body: b.body, Attributes: map[string]string{"ApproximateReceiveCount": "3"}})
		want = append(want, id)
	}
	ev.Records = append(ev.Records, tagEvent(1))
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, want) {
		t.Errorf("batch item failures %v, want every malformed message %v", f, want)
	}
	if e, s := evidenceStarted(srv), started(srv); len(e) != 1 || len(s) != 1 {
		t.Errorf("started %d evidence and %d isolation executions, want the good job's and the tag event's", len(e), len(s))
	}
	lines := logLines(t, logs)
	for i, b := range bad {
		id := fmt.Sprintf("bad-%d", i)
		found := false
		for _, l := range lines {
			if l["message"] != id {
				continue
			}
			found = true
			if l["level"] != "ERROR" || l["receiveCount"] != "3" || !strings.Contains(fmt.Sprint(l["error"]), b.why) ||
				!strings.Contains(fmt.Sprint(l["msg"]), "dead-letter queue") {
				t.Errorf("%s logged %v, want an error saying %q, the receive count and the dead-letter queue", id, l, b.why)
			}
		}
		if !found {
			t.Errorf("nothing logged about %s", id)
		}
	}
	for _, l := range lines {
		if l["message"] == "bad-2" && l["instance"] != "i-0000000000000009" {
			t.Errorf("bad-2's line names instance %v, want the job's i-0000000000000009", l["instance"])
		}
	}
}

// A starter without an evidence state machine (New allows it, for isolation-only callers) refuses a job the same
// way: back to the queue, said.
func TestJobWithoutEvidenceMachineGoesBack(t *testing.T) {
	srv := start(t)
	var logs bytes.Buffer
	h, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("admission-starter")), admission.Settings{
		StateMachineARN: srv.StateMachineARN(machine), Window: 10}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1), tagEvent(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"job-1"}) {
		t.Errorf("batch item failures %v, want [job-1]", f)
	}
	if !strings.Contains(logs.String(), admission.EnvEvidenceStateMachineARN) {
		t.Errorf("the log does not say the evidence state machine is missing:\n%s", logs.String())
	}
}

// When the evidence machine cannot be counted (here: it does not exist), its jobs go back and tag events still
// start, also one that waits for room in the isolation window: one kind's trouble does not hold the other.
func TestEvidenceTroubleDoesNotHoldContainment(t *testing.T) {
	srv := start(t)
	earlier := srv.AddExecution(machine, "earlier", "{}")
	h, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("admission-starter")), admission.Settings{
		StateMachineARN: srv.StateMachineARN(machine), Window: 1,
		EvidenceStateMachineARN: srv.StateMachineARN("no-such-machine"), EvidenceWindow: 4,
		MaxWait: time.Second, Poll: time.Second,
		Sleep: func(context.Context, time.Duration) error { srv.FinishExecution(earlier, "SUCCEEDED"); return nil }},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1), tagEvent(1), job(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"job-1", "job-2"}) {
		t.Errorf("batch item failures %v, want both jobs", f)
	}
	if got := started(srv); len(got) != 1 || got[0].Name != "tag-00000001-event" {
		t.Errorf("isolation executions %+v, want the tag event's", got)
	}
}

// Every line the starter logs names the instance (the tag event's resources[0], the job's instanceId) and the
// execution, whatever happened to the message.
func TestEveryLogLineNamesInstanceAndExecution(t *testing.T) {
	srv, h, logs := twoStage(t, 1, 1, noWait)
	srv.AddExecution(machine, "earlier", "{}")
	// Started, window full, started again (already exists after it ended), for each kind.
	if _, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1), job(2), tagEvent(1)}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range srv.Executions() {
		srv.FinishExecution(e.ARN, "SUCCEEDED")
	}
	if _, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1), tagEvent(1)}}); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{ // message -> instance, execution
		"job-1": {"i-0000000000000001", "tag-00000001-event"},
		"job-2": {"i-0000000000000002", "tag-00000002-event"},
		"msg-1": {"i-0000000000000001", "tag-00000001-event"},
	}
	lines := logLines(t, logs)
	if len(lines) < 5 {
		t.Fatalf("%d log lines, want at least one per message and outcome:\n%s", len(lines), logs.String())
	}
	for _, l := range lines {
		w, ok := want[fmt.Sprint(l["message"])]
		if !ok || l["instance"] != w[0] || l["execution"] != w[1] {
			t.Errorf("log line %v: want message, instance and execution of one of %v", l, want)
		}
	}
}

// throttledOnce is the real Step Functions client of the simulator (which applies no throttling to these calls),
// with AWS's answer to a ListExecutions over its rate for the first count of one state machine.
type throttledOnce struct {
	*sfn.Client
	arn   string
	done  bool
	calls int
}

func (c *throttledOnce) ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, opts ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	if aws.ToString(in.StateMachineArn) == c.arn {
		c.calls++
		if !c.done {
			c.done = true
			return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
		}
	}
	return c.Client.ListExecutions(ctx, in, opts...)
}

// A throttled count holds the job for the next poll, in the same invocation: it is started then, not handed back
// to wait a whole visibility timeout.
func TestThrottledCountIsTriedAgainAtTheNextPoll(t *testing.T) {
	srv := start(t)
	srv.SetStateMachine(evidenceMachine, nil)
	api := &throttledOnce{Client: sfn.NewFromConfig(srv.AWSConfig("admission-starter")), arn: srv.StateMachineARN(evidenceMachine)}
	waits := 0
	h, err := admission.New(api, admission.Settings{
		StateMachineARN: srv.StateMachineARN(machine), Window: 10,
		EvidenceStateMachineARN: srv.StateMachineARN(evidenceMachine), EvidenceWindow: 4,
		MaxWait: 3 * time.Second, Poll: time.Second,
		Sleep: func(context.Context, time.Duration) error { waits++; return nil }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{job(1)}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v: want the job started after one poll", err, failed(resp))
	}
	if e := evidenceStarted(srv); len(e) != 1 || e[0].Name != "tag-00000001-event" {
		t.Errorf("evidence executions %+v, want the job's", e)
	}
	if waits != 1 || api.calls != 2 {
		t.Errorf("%d waits and %d counts, want 1 and 2 (throttled, then counted)", waits, api.calls)
	}
}

// A message the starter can never start must raise an alarm at its first receive: SQS leaves such a poison pill
// out of ApproximateAgeOfOldestMessage, and the dead-letter queue gets it only hours later. The template's metric
// filter (a JSON pattern { $.FIELD IS TRUE }) must match the starter's line about it, and no other line.
func TestUnstartableMessageRaisesTheAlarm(t *testing.T) {
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := tpl.Resources["UnstartableMessageMetricFilter"]
	if !ok || f.Type != "AWS::Logs::MetricFilter" {
		t.Fatal("template.yaml has no AWS::Logs::MetricFilter UnstartableMessageMetricFilter")
	}
	if g := f.Properties["LogGroupName"]; !cmp.Equal(g, map[string]any{"Ref": "AdmissionStarterLogGroup"}) {
		t.Errorf("the filter reads log group %v, want the admission starter's", g)
	}
	m := regexp.MustCompile(`^\{ \$\.(\w+) IS TRUE \}$`).FindStringSubmatch(fmt.Sprint(f.Properties["FilterPattern"]))
	if m == nil {
		t.Fatalf("filter pattern %v is not { $.FIELD IS TRUE }", f.Properties["FilterPattern"])
	}
	field := m[1]

	srv, h, logs := twoStage(t, 1, 1, noWait)
	srv.AddExecution(machine, "earlier-isolation", "{}") // the isolation window is full: the tag event goes back too, said at INFO
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "bad", Body: `not json`, Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		tagEvent(1), job(1)}}
	if _, err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	matched := map[string]bool{}
	lines := logLines(t, logs)
	for _, l := range lines {
		if l[field] == true {
			matched[fmt.Sprint(l["message"])] = true
		}
	}
	if !cmp.Equal(matched, map[string]bool{"bad": true}) {
		t.Errorf("the filter matches the lines of messages %v, want only the malformed one's; the log:\n%s", matched, logs)
	}
	if len(lines) < 2 {
		t.Errorf("the starter logged %d lines, want one about the malformed message and one about the full window", len(lines))
	}
}
