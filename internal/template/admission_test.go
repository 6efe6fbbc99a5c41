package template

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
)

// The admission starter is deployed (issue 16): the isolation rule's queue (encrypted, redriven to the dead-letter
// queue, visibility timeout at least six times the starter's timeout), an event source mapping of maximum
// concurrency 2 reporting batch item failures (the handler returns them), the poller's three SQS actions on that
// queue only, and the window a parameter whose default is the starter's.
func TestAdmissionStarterIsDeployed(t *testing.T) {
	tpl := load(t)
	queue := resourceProps(t, tpl, "AdmissionQueue", "AWS::SQS::Queue")
	fn := resourceProps(t, tpl, "AdmissionStarterFunction", "AWS::Serverless::Function")
	esm := resourceProps(t, tpl, "AdmissionStarterEventSource", "AWS::Lambda::EventSourceMapping")

	if queue["SqsManagedSseEnabled"] != true {
		t.Error("the admission queue is not encrypted (SqsManagedSseEnabled)")
	}
	redrive, _ := queue["RedrivePolicy"].(map[string]any)
	if q, _ := GetAttResource(redrive["deadLetterTargetArn"], "Arn"); q != "DeadLetterQueue" {
		t.Errorf("RedrivePolicy = %v, want the dead-letter queue", redrive)
	}
	// A standard queue's message keeps its enqueue time in the dead-letter queue, so that one must keep it longer.
	// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html
	dlq := resourceProps(t, tpl, "DeadLetterQueue", "AWS::SQS::Queue")
	if r, _ := queue["MessageRetentionPeriod"].(int); r == 0 || r >= dlq["MessageRetentionPeriod"].(int) {
		t.Errorf("MessageRetentionPeriod %v, want less than the dead-letter queue's %v", queue["MessageRetentionPeriod"], dlq["MessageRetentionPeriod"])
	}
	if n, _ := redrive["maxReceiveCount"].(int); n < 10 {
		t.Errorf("maxReceiveCount = %v: a storm returns an event many times before there is room", redrive["maxReceiveCount"])
	}
	// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
	timeout, _ := fn["Timeout"].(int)
	if vis, _ := queue["VisibilityTimeout"].(int); timeout == 0 || vis < 6*timeout {
		t.Errorf("VisibilityTimeout %v, function Timeout %v: want at least 6x", queue["VisibilityTimeout"], fn["Timeout"])
	}
	if wait := int(admission.DefaultMaxWait.Seconds()); wait >= timeout {
		t.Errorf("the starter waits %d s for room, not less than its timeout %d s", wait, timeout)
	}

	if q, _ := GetAttResource(esm["EventSourceArn"], "Arn"); q != "AdmissionQueue" {
		t.Errorf("EventSourceArn = %v", esm["EventSourceArn"])
	}
	if refOf(esm["FunctionName"]) != "AdmissionStarterFunction" {
		t.Errorf("FunctionName = %v", esm["FunctionName"])
	}
	if sc, _ := esm["ScalingConfig"].(map[string]any); sc["MaximumConcurrency"] != 2 {
		t.Errorf("ScalingConfig = %v, want MaximumConcurrency 2", esm["ScalingConfig"])
	}
	if !cmp.Equal(esm["FunctionResponseTypes"], []any{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v: the starter's batch item failures would be ignored", esm["FunctionResponseTypes"])
	}

	policies, err := tpl.RolePolicies("AdmissionStarterRole")
	if err != nil {
		t.Fatal(err)
	}
	want := []Statement{{Effect: "Allow", Action: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
		Resource: []any{map[string]any{"Fn::GetAtt": []any{"AdmissionQueue", "Arn"}}}}}
	if diff := cmp.Diff(want, policies["event-source"]); diff != "" {
		t.Errorf("event-source policy (-want +got):\n%s", diff)
	}
	for _, st := range policies[StepPolicyName] {
		if !cmp.Equal(st.Resource, []any{map[string]any{"Ref": "IsolationStateMachine"}}) {
			t.Errorf("the starter may act on %v, want the isolation state machine only", st.Resource)
		}
	}

	env, _ := fn["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if refOf(vars[admission.EnvWindow]) != "AdmissionWindow" || refOf(vars[admission.EnvStateMachineARN]) != "IsolationStateMachine" {
		t.Errorf("environment %v", vars)
	}
	if d := tpl.Parameters["AdmissionWindow"]; d == nil || d["Default"] != admission.DefaultWindow {
		t.Errorf("AdmissionWindow = %v, want default %d", d, admission.DefaultWindow)
	}
}
