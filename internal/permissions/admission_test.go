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
// that calls AWS, for both kinds it admits (a tag event on the isolation machine, an evidence job on the evidence
// machine): started while the window has room, delivered again after its execution ended
// (ExecutionAlreadyExists), and with the window full (counted, not started). Lambda's pollers of the two queues
// (sqs:ReceiveMessage, DeleteMessage, GetQueueAttributes) are not the code's: template.yaml grants them in the
// role's event-source policy, checked by internal/template TestAdmissionStarterIsDeployed.
// evidenceMachine is the stage-2 state machine's name (issue 16).
const evidenceMachine = "ec2-isolation-evidence"

func admissionCalls(t *testing.T) []sim.Call {
	t.Helper()
	ctx := context.Background()
	srv := simtest.Start(t, sim.Scenario{})
	srv.SetStateMachine(runner.StateMachineName, nil) // executions stay RUNNING until ended here
	srv.SetStateMachine(evidenceMachine, nil)
	env := map[string]string{admission.EnvStateMachineARN: srv.StateMachineARN(runner.StateMachineName), admission.EnvWindow: "1",
		admission.EnvEvidenceStateMachineARN: srv.StateMachineARN(evidenceMachine), admission.EnvEvidenceWindow: "1"}
	h, err := steps.AdmissionStarter(srv.AWSConfig("admission-starter"), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	msg := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: `{"id":"e1","detail-type":"Tag Change on Resource"}`},
		{MessageId: "j1", Body: `{"evidenceJob":{"instanceId":"i-0a1b2c3d4e5f60718","isolationExecution":"tag-e1"}}`}}}
	if resp, err := h(ctx, msg); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("start: %+v %v", resp, err)
	}
	if n := len(srv.Executions()); n != 2 {
		t.Fatalf("%d executions started, want the isolation and the evidence", n)
	}
	for _, e := range srv.Executions() {
		srv.FinishExecution(e.ARN, "SUCCEEDED")
	}
	if resp, err := h(ctx, msg); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %+v %v", resp, err)
	}
	srv.AddExecution(runner.StateMachineName, "running", "{}")
	srv.AddExecution(evidenceMachine, "running", "{}")
	full, err := admission.New(sfn.NewFromConfig(srv.AWSConfig("admission-starter")), admission.Settings{
		StateMachineARN: env[admission.EnvStateMachineARN], Window: 1,
		EvidenceStateMachineARN: env[admission.EnvEvidenceStateMachineARN], EvidenceWindow: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	next := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m2", Body: `{"id":"e2"}`},
		{MessageId: "j2", Body: `{"evidenceJob":{"instanceId":"i-0a1b2c3d4e5f60718","isolationExecution":"tag-e2"}}`}}}
	if resp, err := full.Handle(ctx, next); err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("full windows: %+v %v", resp, err)
	}
	return srv.Calls()
}
