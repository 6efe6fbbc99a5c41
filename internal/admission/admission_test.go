package admission_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

const machine = "ec2-isolation-isolation"

var ctx = context.Background()

// tagEvent is an SQS message carrying an EventBridge tag event, as the rule's queue target delivers it.
func tagEvent(k int) events.SQSMessage {
	return events.SQSMessage{MessageId: fmt.Sprintf("msg-%d", k),
		Body: fmt.Sprintf(`{"id":"0000000%d-event","detail-type":"Tag Change on Resource","source":"aws.tag","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-000000000000000%d"]}`, k, k)}
}

func batch(ks ...int) events.SQSEvent {
	var ev events.SQSEvent
	for _, k := range ks {
		ev.Records = append(ev.Records, tagEvent(k))
	}
	return ev
}

func failed(r events.SQSEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// started lists the isolation executions the starter started (named tag-...), in start order.
func started(srv *sim.Server) []sim.Execution {
	var out []sim.Execution
	for _, e := range srv.Executions() {
		if e.StateMachineARN == srv.StateMachineARN(machine) && len(e.Name) > 4 && e.Name[:4] == "tag-" {
			out = append(out, e)
		}
	}
	return out
}

func newHandler(t *testing.T, srv *sim.Server, window int, sleep func(context.Context, time.Duration) error) *admission.Handler {
	t.Helper()
	h, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("start-isolation")), admission.Settings{
		StateMachineARN: srv.StateMachineARN(machine), Window: window, MaxWait: 3 * time.Second, Poll: time.Second,
		Sleep: sleep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func start(t *testing.T) *sim.Server {
	t.Helper()
	srv := simtest.Start(t, sim.Scenario{})
	srv.SetStateMachine(machine, nil) // executions stay RUNNING until the test ends them
	return srv
}

// With two of a window of three running, a batch of three starts its first event and hands the other two back to
// the queue, in order, after waiting for room that never came.
func TestStartsWhileTheWindowHasRoom(t *testing.T) {
	srv := start(t)
	srv.AddExecution(machine, "earlier-1", "{}")
	srv.AddExecution(machine, "earlier-2", "{}")
	waits := 0
	h := newHandler(t, srv, 3, func(context.Context, time.Duration) error { waits++; return nil })
	resp, err := h.Handle(ctx, batch(1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	got := started(srv)
	if len(got) != 1 || got[0].Name != "tag-00000001-event" || got[0].Input != tagEvent(1).Body || got[0].Status != "RUNNING" {
		t.Fatalf("started %+v, want only the first event's execution, named after the event, its input the event", got)
	}
	if f := failed(resp); !slices.Equal(f, []string{"msg-2", "msg-3"}) {
		t.Errorf("batch item failures %v, want the two events not started, msg-2 and msg-3", f)
	}
	if waits != 3 {
		t.Errorf("waited %d times for room, want 3 (MaxWait 3 s, Poll 1 s)", waits)
	}
}

// Room made while the starter waits (an execution ended) is used at once, in tag order.
func TestUsesRoomMadeWhileWaiting(t *testing.T) {
	srv := start(t)
	first := srv.AddExecution(machine, "earlier-1", "{}")
	h := newHandler(t, srv, 1, func(context.Context, time.Duration) error {
		srv.FinishExecution(first, "SUCCEEDED")
		for _, e := range started(srv) {
			srv.FinishExecution(e.ARN, "SUCCEEDED")
		}
		return nil
	})
	resp, err := h.Handle(ctx, batch(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	got := started(srv)
	if len(got) != 2 || got[0].Name != "tag-00000001-event" || got[1].Name != "tag-00000002-event" {
		t.Fatalf("started %+v, want both events' executions, in order", got)
	}
	if f := failed(resp); len(f) != 0 {
		t.Errorf("batch item failures %v, want none", f)
	}
}

// A redelivered event starts nothing twice: its execution, still running or ended, is the one already started.
func TestRedeliveryStartsNothingTwice(t *testing.T) {
	srv := start(t)
	h := newHandler(t, srv, 10, nil)
	for round := range 2 {
		if resp, err := h.Handle(ctx, batch(1)); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("round %d: %v, failures %v", round, err, failed(resp))
		}
	}
	got := started(srv)
	if len(got) != 1 {
		t.Fatalf("%d executions for one event delivered twice", len(got))
	}
	srv.FinishExecution(got[0].ARN, "SUCCEEDED")
	if resp, err := h.Handle(ctx, batch(1)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the execution ended: %v, failures %v", err, failed(resp))
	}
	if got := started(srv); len(got) != 1 {
		t.Errorf("%d executions after a third delivery", len(got))
	}
}

// A message Step Functions refuses (not JSON) goes back to the queue (its dead-letter queue in the end) and does
// not stop the others.
func TestRefusedEventGoesBackAlone(t *testing.T) {
	srv := start(t)
	h := newHandler(t, srv, 10, nil)
	ev := batch(1, 2)
	ev.Records = slices.Insert(ev.Records, 1, events.SQSMessage{MessageId: "msg-bad", Body: "not json"})
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if f := failed(resp); !slices.Equal(f, []string{"msg-bad"}) {
		t.Errorf("batch item failures %v, want [msg-bad]", f)
	}
	if got := started(srv); len(got) != 2 {
		t.Errorf("%d executions started, want the two valid events'", len(got))
	}
}

func TestRefusesBadSettings(t *testing.T) {
	for _, s := range []admission.Settings{
		{Window: 1},
		{StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:x", Window: 0},
		{StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:x", Window: 1, MaxWait: time.Second},
		{StateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:x", Window: 1,
			EvidenceStateMachineARN: "arn:aws:states:us-east-1:123456789012:stateMachine:e", EvidenceWindow: 0},
	} {
		var ce *steperr.ConfigError
		if _, err := admission.New(nil, s, nil); !errors.As(err, &ce) {
			t.Errorf("New(%+v) = %v, want a ConfigError", s, err)
		}
	}
}
