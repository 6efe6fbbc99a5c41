package sim

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// The evidence queue through the real SDK client (AWS JSON 1.0): send, receive (hidden while in flight, the SDK
// checking each MD5), delete; the errors the runner meets.
func TestSQSSendReceiveDelete(t *testing.T) {
	ctx := context.Background()
	clock := NewManualClock(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	sc := baseScenario()
	sc.Queues = []Queue{{Name: "ec2-isolation-evidence", VisibilityTimeout: 60}}
	s, _, _ := start(t, sc, WithClock(clock), WithInProcess())
	c := sqs.NewFromConfig(s.AWSConfig("AKIDTEST"))

	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("ec2-isolation-evidence")})
	if err != nil {
		t.Fatalf("GetQueueUrl: %v", err)
	}
	url := aws.ToString(got.QueueUrl)
	if want := "https://sqs.us-east-1.amazonaws.com/123456789012/ec2-isolation-evidence"; url != want || s.QueueURL("ec2-isolation-evidence") != want {
		t.Errorf("queue URL = %s, want %s", url, want)
	}
	bodies := []string{`{"evidenceJob":{"instanceId":"i-1"}}`, `{"evidenceJob":{"instanceId":"i-2"}}`, `{"evidenceJob":{"instanceId":"i-3"}}`}
	for _, b := range bodies {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatalf("SendMessage: %v", err) // the SDK checks MD5OfMessageBody
		}
	}
	if diff := cmp.Diff(bodies, s.QueueBodies("ec2-isolation-evidence")); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
	first, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 2})
	if err != nil || len(first.Messages) != 2 || aws.ToString(first.Messages[0].Body) != bodies[0] {
		t.Fatalf("ReceiveMessage = %+v, %v; want the first two", first, err)
	}
	// In flight: hidden from the next receive until the visibility timeout.
	next, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(next.Messages) != 1 || aws.ToString(next.Messages[0].Body) != bodies[2] {
		t.Fatalf("second ReceiveMessage = %+v, %v; want the third only", next, err)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	// Twice = once.
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage again: %v", err)
	}
	clock.Advance(61 * time.Second)
	again, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 5})
	if err != nil || len(again.Messages) != 2 {
		t.Fatalf("ReceiveMessage after the timeout = %+v, %v; want the two not deleted", again, err)
	}
	if diff := cmp.Diff(bodies[1:], s.QueueBodies("ec2-isolation-evidence")); diff != "" {
		t.Errorf("left in the queue (-want +got):\n%s", diff)
	}

	for name, call := range map[string]func() error{
		"unknown queue name": func() error {
			_, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
			return err
		},
		"unknown queue URL": func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url + "-x"), MessageBody: aws.String("x")})
			return err
		},
	} {
		if code, status := apiErr(t, call()); code != "AWS.SimpleQueueService.NonExistentQueue" || status != 400 {
			t.Errorf("%s: %s %d, want AWS.SimpleQueueService.NonExistentQueue 400", name, code, status)
		}
	}
	if code, _ := apiErr(t, func() error {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("bad \x01")})
		return err
	}()); code != "InvalidMessageContents" {
		t.Errorf("a body with a control character: %s, want InvalidMessageContents", code)
	}
	if code, _ := apiErr(t, func() error {
		_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
		return err
	}()); code != "InvalidParameterValue" {
		t.Errorf("MaxNumberOfMessages 11: %s, want InvalidParameterValue", code)
	}

	// An injected fault answers in the JSON protocol and changes nothing.
	s.Update(func(a *Account) {
		a.Faults.Errors = []ErrorFault{{Service: "sqs", Action: "SendMessage", Code: "KmsAccessDenied", Message: "denied by the key policy"}}
	})
	if code, status := apiErr(t, func() error {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
		return err
	}()); code != "KmsAccessDenied" || status != 400 {
		t.Errorf("injected fault: %s %d, want KmsAccessDenied 400", code, status)
	}
	if n := len(s.QueueBodies("ec2-isolation-evidence")); n != 2 {
		t.Errorf("%d messages after a refused send, want 2", n)
	}
}
