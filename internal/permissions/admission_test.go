package permissions_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

// admissionCalls runs the admission starter (caller "admission-starter", wired as its Lambda is) over every path
// that calls AWS: an event started while the window has room, the same event delivered again after its execution
// ended (ExecutionAlreadyExists), and an event with the window full (counted, not started). Lambda's poller of
// the queue (sqs:ReceiveMessage, DeleteMessage, GetQueueAttributes) is not the code's: template.yaml grants it
// in the role's event-source policy, checked by internal/template TestAdmissionStarterIsDeployed.
func admissionCalls(t *testing.T) []sim.Call {
	t.Helper()
	ctx := context.Background()
	srv := simtest.Start(t, sim.Scenario{})
	srv.SetStateMachine(runner.StateMachineName, nil) // executions stay RUNNING until ended here
	env := map[string]string{admission.EnvStateMachineARN: srv.StateMachineARN(runner.StateMachineName), admission.EnvWindow: "1"}
	h, err := steps.AdmissionStarter(srv.AWSConfig("admission-starter"), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	msg := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: `{"id":"e1","detail-type":"Tag Change on Resource"}`}}}
	if resp, err := h(ctx, msg); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("start: %+v %v", resp, err)
	}
	for _, e := range srv.Executions() {
		srv.FinishExecution(e.ARN, "SUCCEEDED")
	}
	if resp, err := h(ctx, msg); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %+v %v", resp, err)
	}
	srv.AddExecution(runner.StateMachineName, "running", "{}")
	full, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("admission-starter")), admission.Settings{StateMachineARN: env[admission.EnvStateMachineARN], Window: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	next := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m2", Body: `{"id":"e2"}`}}}
	if resp, err := full.Handle(ctx, next); err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("full window: %+v %v", resp, err)
	}
	return srv.Calls()
}
