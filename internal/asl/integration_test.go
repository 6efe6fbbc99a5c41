package asl_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// Issue 16: the isolation queues its instance settings with the sqs:sendMessage integration. The engine resolves
// the Parameters, serialises the MessageBody object to JSON text as Step Functions does, hands it to the Invoker
// with the resource, and processes SendMessage's result like any task result.
func TestSQSSendMessageIntegration(t *testing.T) {
	def := `{"StartAt": "Queue", "States": {
	  "Queue": {"Type": "Task", "Resource": "arn:${Partition}:states:::sqs:sendMessage",
	    "Parameters": {"QueueUrl": "${Url}", "MessageBody": {"evidenceJob": {"instanceId.$": "$.id", "isolationExecution.$": "$$.Execution.Name", "record.$": "$.record"}}},
	    "ResultSelector": {"messageId.$": "$.MessageId"}, "ResultPath": "$.queued", "End": true}}}`
	m, err := asl.Load([]byte(def), map[string]string{"Partition": "aws-us-gov", "Url": "https://sqs.us-gov-west-1.amazonaws.com/123456789012/q"})
	if err != nil {
		t.Fatal(err)
	}
	inv := newInvoker(map[string]taskFunc{"arn:aws-us-gov:states:::sqs:sendMessage": returns(map[string]any{"MessageId": "m-1", "MD5OfMessageBody": "d41d"})})
	e := m.Start(context.Background(), "tag-1", []byte(`{"id": "i-1", "record": {"instanceId": "i-1", "volumes": [1, 2]}}`), inv, testOptions(&recSleeper{}))
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("status %s %s %s", e.Status, e.Error, e.Cause)
	}
	want := []any{map[string]any{"QueueUrl": "https://sqs.us-gov-west-1.amazonaws.com/123456789012/q",
		"MessageBody": `{"evidenceJob":{"instanceId":"i-1","isolationExecution":"tag-1","record":{"instanceId":"i-1","volumes":[1,2]}}}`}}
	if diff := cmp.Diff(want, inv.inputs("arn:aws-us-gov:states:::sqs:sendMessage")); diff != "" {
		t.Errorf("the integration's input (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`{"id":"i-1","queued":{"messageId":"m-1"},"record":{"instanceId":"i-1","volumes":[1,2]}}`, string(e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	// A body already a string is sent as it is.
	m2, err := asl.Load([]byte(`{"StartAt": "Q", "States": {"Q": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
	  "Parameters": {"QueueUrl": "u", "MessageBody.$": "$.text"}, "End": true}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	inv2 := newInvoker(map[string]taskFunc{"arn:aws:states:::sqs:sendMessage": returns(map[string]any{"MessageId": "m-2"})})
	m2.Start(context.Background(), "x", []byte(`{"text": "hello"}`), inv2, testOptions(&recSleeper{}))
	if diff := cmp.Diff([]any{map[string]any{"QueueUrl": "u", "MessageBody": "hello"}}, inv2.inputs("arn:aws:states:::sqs:sendMessage")); diff != "" {
		t.Errorf("string body (-want +got):\n%s", diff)
	}
}

// Any other service integration is refused at Load, never run as if it were a function.
func TestOtherServiceIntegrationsAreRefused(t *testing.T) {
	for _, res := range []string{"arn:aws:states:::lambda:invoke", "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "arn:aws:states:::aws-sdk:sqs:sendMessage"} {
		_, err := asl.Load([]byte(`{"StartAt": "Q", "States": {"Q": {"Type": "Task", "Resource": "`+res+`", "End": true}}}`), nil)
		if !errors.Is(err, asl.ErrUnsupported) {
			t.Errorf("%s: Load error %v, want ErrUnsupported", res, err)
		}
	}
}
