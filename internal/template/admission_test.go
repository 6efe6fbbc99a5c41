package template

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
)

// The admission starter is deployed (issue 16) on two queues: the isolation rule's (tag events) and the evidence
// queue (stage-2 jobs the isolation state machine sends). Each queue is encrypted, redriven to a dead-letter
// queue that keeps messages longer than it does, after enough receives for a storm, with a visibility timeout at
// least six times the starter's timeout; each has an event source mapping of maximum concurrency 2 reporting
// batch item failures (the handler returns them); the pollers' three SQS actions on those two queues only; the
// starter starts and counts on the two state machines only; both windows are parameters whose defaults are the
// starter's.
func TestAdmissionStarterIsDeployed(t *testing.T) {
	tpl := load(t)
	fn := resourceProps(t, tpl, "AdmissionStarterFunction", "AWS::Serverless::Function")
	timeout, _ := fn["Timeout"].(int)
	if wait := int(admission.DefaultMaxWait.Seconds()); wait >= timeout {
		t.Errorf("the starter waits %d s for room, not less than its timeout %d s", wait, timeout)
	}

	for _, q := range []struct{ queue, dlq, mapping string }{
		{"AdmissionQueue", "DeadLetterQueue", "AdmissionStarterEventSource"},
		{"EvidenceQueue", "EvidenceDeadLetterQueue", "AdmissionStarterEvidenceSource"},
	} {
		t.Run(q.queue, func(t *testing.T) {
			queue := resourceProps(t, tpl, q.queue, "AWS::SQS::Queue")
			if queue["SqsManagedSseEnabled"] != true {
				t.Error("the queue is not encrypted (SqsManagedSseEnabled)")
			}
			redrive, _ := queue["RedrivePolicy"].(map[string]any)
			if got, _ := GetAttResource(redrive["deadLetterTargetArn"], "Arn"); got != q.dlq {
				t.Errorf("RedrivePolicy = %v, want %s", redrive, q.dlq)
			}
			// A standard queue's message keeps its enqueue time in the dead-letter queue, so that one must keep it
			// longer.
			// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html
			dlq := resourceProps(t, tpl, q.dlq, "AWS::SQS::Queue")
			if dlq["SqsManagedSseEnabled"] != true {
				t.Errorf("%s is not encrypted", q.dlq)
			}
			if r, _ := queue["MessageRetentionPeriod"].(int); r == 0 || r >= dlq["MessageRetentionPeriod"].(int) {
				t.Errorf("MessageRetentionPeriod %v, want less than the dead-letter queue's %v", queue["MessageRetentionPeriod"], dlq["MessageRetentionPeriod"])
			}
			// Enough receives for a storm (a message waiting for its window is received again), few enough that a
			// malformed message reaches the dead-letter queue rather than loop until it expires: the receives
			// (one per visibility timeout at the most) end within its retention.
			n, _ := redrive["maxReceiveCount"].(int)
			vis, _ := queue["VisibilityTimeout"].(int)
			if n < 10 {
				t.Errorf("maxReceiveCount = %v: a storm returns a message many times before there is room", redrive["maxReceiveCount"])
			}
			if r, _ := queue["MessageRetentionPeriod"].(int); n*vis >= r {
				t.Errorf("maxReceiveCount %d x VisibilityTimeout %d s >= retention %d s: a malformed message could expire, never dead-lettered", n, vis, r)
			}
			// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
			if timeout == 0 || vis < 6*timeout {
				t.Errorf("VisibilityTimeout %v, function Timeout %v: want at least 6x", queue["VisibilityTimeout"], fn["Timeout"])
			}

			esm := resourceProps(t, tpl, q.mapping, "AWS::Lambda::EventSourceMapping")
			if got, _ := GetAttResource(esm["EventSourceArn"], "Arn"); got != q.queue {
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
		})
	}
	mappings := 0
	for _, r := range tpl.Resources {
		if r.Type == "AWS::Lambda::EventSourceMapping" {
			mappings++
		}
	}
	if mappings != 2 {
		t.Errorf("%d event source mappings, want the starter's two", mappings)
	}

	policies, err := tpl.RolePolicies("AdmissionStarterRole")
	if err != nil {
		t.Fatal(err)
	}
	want := []Statement{{Effect: "Allow", Action: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
		Resource: []any{map[string]any{"Fn::GetAtt": []any{"AdmissionQueue", "Arn"}}, map[string]any{"Fn::GetAtt": []any{"EvidenceQueue", "Arn"}}}}}
	if diff := cmp.Diff(want, policies["event-source"]); diff != "" {
		t.Errorf("event-source policy (-want +got):\n%s", diff)
	}
	for _, st := range policies[StepPolicyName] {
		if !cmp.Equal(st.Resource, []any{map[string]any{"Ref": "IsolationStateMachine"}, map[string]any{"Ref": "EvidenceStateMachine"}}) {
			t.Errorf("the starter may act on %v, want the isolation and evidence state machines only", st.Resource)
		}
	}

	env, _ := fn["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if refOf(vars[admission.EnvWindow]) != "AdmissionWindow" || refOf(vars[admission.EnvStateMachineARN]) != "IsolationStateMachine" ||
		refOf(vars[admission.EnvEvidenceWindow]) != "EvidenceWindow" || refOf(vars[admission.EnvEvidenceStateMachineARN]) != "EvidenceStateMachine" {
		t.Errorf("environment %v", vars)
	}
	if d := tpl.Parameters["AdmissionWindow"]; d == nil || d["Default"] != admission.DefaultWindow {
		t.Errorf("AdmissionWindow = %v, want default %d", d, admission.DefaultWindow)
	}
	if d := tpl.Parameters["EvidenceWindow"]; d == nil || d["Default"] != admission.DefaultEvidenceWindow || d["MinValue"] != 1 {
		t.Errorf("EvidenceWindow = %v, want default %d, MinValue 1", d, admission.DefaultEvidenceWindow)
	}
}

// Stage 2 is wired (issue 16): only the isolation state machine's role may send to the evidence queue (no queue
// policy opens it to anyone else), and that role sends nowhere else; the evidence state machine's failures and
// time-outs, its dead letters and a stalled evidence queue each raise an alarm on the stack's topic; its ARN is
// an output.
func TestEvidenceStageIsDeployed(t *testing.T) {
	tpl := load(t)
	evidenceQueue := map[string]any{"Fn::GetAtt": []any{"EvidenceQueue", "Arn"}}
	var senders []string
	for id, stmts := range allowStatements(t, tpl) {
		for _, st := range stmts {
			if !slices.Contains(st.Action, "sqs:SendMessage") {
				continue
			}
			if len(st.Action) != 1 || !cmp.Equal(st.Resource, []any{evidenceQueue}) {
				t.Errorf("role %s: %v on %v, want sqs:SendMessage on the evidence queue only", id, st.Action, st.Resource)
			}
			senders = append(senders, id)
		}
	}
	if !slices.Equal(senders, []string{"StateMachineRole"}) {
		t.Errorf("roles that may send to a queue: %v, want the isolation state machine's only", senders)
	}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::SQS::QueuePolicy" {
			continue
		}
		for _, q := range r.Properties["Queues"].([]any) {
			if refOf(q) == "EvidenceQueue" || refOf(q) == "EvidenceDeadLetterQueue" {
				t.Errorf("queue policy %s opens %v", id, q)
			}
		}
	}

	alarms := map[string]string{} // metric -> the resource it watches
	for _, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		dims, _ := r.Properties["Dimensions"].([]any)
		for _, d := range dims {
			v := d.(map[string]any)["Value"]
			watched := refOf(v)
			if q, ok := GetAttResource(v, "QueueName"); ok {
				watched = q
			}
			if watched == "EvidenceStateMachine" || watched == "EvidenceQueue" || watched == "EvidenceDeadLetterQueue" {
				alarms[r.Properties["MetricName"].(string)+" "+watched] = watched
			}
		}
	}
	for _, want := range []string{"ExecutionsFailed EvidenceStateMachine", "ExecutionsTimedOut EvidenceStateMachine",
		"ApproximateNumberOfMessagesVisible EvidenceDeadLetterQueue", "ApproximateAgeOfOldestMessage EvidenceQueue"} {
		if _, ok := alarms[want]; !ok {
			t.Errorf("no alarm on %s (have %v)", want, alarms)
		}
	}
	if out := tpl.Outputs["EvidenceStateMachineArn"]; refOf(out["Value"]) != "EvidenceStateMachine" {
		t.Errorf("output EvidenceStateMachineArn = %v", out)
	}
}
