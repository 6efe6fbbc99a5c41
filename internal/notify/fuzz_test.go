package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// FuzzNotify runs the notify function on any JSON payload, decoded as the Lambda runtime decodes it. The event
// it carries is the execution input, whatever that was; the rest comes from the state machine, so a payload
// that does not decode is a definition bug the runtime reports. Anything that decodes gets a message id, a
// resumeAt, IsolationFailed after publishing, or InvalidInput before any call; SNS never refuses the message
// (a refused notification is a silent failure); the message stays within SNS's limits, its chat body is an
// AWS Chatbot notification and no value in it can mention or link in chat.
func FuzzNotify(f *testing.F) {
	for _, in := range []workflow.NotifyInput{succeeded(), failed()} {
		b, err := json.Marshal(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, seed := range []string{
		`{"outcome":"FAILED","executionName":"e","failures":[{"state":"Validate and record","error":"InvalidEvent","cause":"<!channel> @here <https://x|y> ` + "`" + `"}],"event":[1]}`,
		`{"outcome":"FAILED","executionName":"e","redriveCount":1,"failures":[{"state":"Contain","redriveCount":0}]}`,
		`{"outcome":"SUCCEEDED","instanceId":"i-0123456789abcdef0\r\nBcc: x","executionName":"` + strings.Repeat("é", 200) + `"}`,
		`{"outcome":"FAILED","failures":[{"state":""}]}`, `{"outcome":"ABORTED"}`, `{}`, `null`,
	} {
		f.Add([]byte(seed))
	}
	var (
		srv *sim.Server
		h   lambda.Handler
	)
	// A fresh simulator every so often: it keeps every message published, and the fuzzer publishes many.
	renew := func() {
		if srv != nil {
			srv.Close()
		}
		var err error
		if srv, err = sim.Start(scenario()); err != nil {
			f.Fatal(err)
		}
		h = lambda.NewHandler(newHandler(nil, srv).Handle)
	}
	renew()
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, payload []byte) {
		var in workflow.NotifyInput
		if json.Unmarshal(payload, &in) != nil {
			return
		}
		if len(srv.Messages()) > 200 {
			renew()
		}
		srv.ResetCalls()
		sent := len(srv.Messages())
		out, err := h.Invoke(context.Background(), payload)
		if err != nil && !isStepError(err) {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		var (
			invalid *steperr.InvalidInput
			refused *steperr.AWSError
		)
		switch {
		case errors.As(err, &invalid) && len(srv.Calls()) > 0:
			t.Fatalf("%d AWS calls before refusing the input: %v", len(srv.Calls()), err)
		case errors.As(err, &refused):
			t.Fatalf("SNS refused the notification: %v", err)
		}
		msgs := srv.Messages()[sent:]
		if err == nil && in.Outcome == workflow.OutcomeFailed {
			var res workflow.NotifyOutput
			if json.Unmarshal(out, &res) != nil || res.ResumeAt == "" || len(msgs) != 0 {
				t.Fatalf("FAILED outcome answered %s with %d messages, want a resumeAt and none", out, len(msgs))
			}
		}
		for _, m := range msgs {
			if utf8.RuneCountInString(m.Subject) >= 100 || strings.ContainsFunc(m.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("subject %q", m.Subject)
			}
			if len(m.Message) > 256<<10 {
				t.Fatalf("message of %d bytes", len(m.Message))
			}
			var bodies map[string]string
			if err := json.Unmarshal([]byte(m.Message), &bodies); err != nil || bodies["email"] == "" {
				t.Fatalf("not a MessageStructure json document with an email body: %v", err)
			}
			var chat struct {
				Version, Source string
				Content         struct {
					Title, Description string
					NextSteps          []string
				}
			}
			if err := json.Unmarshal([]byte(bodies["default"]), &chat); err != nil || chat.Version != "1.0" || chat.Source != "custom" {
				t.Fatalf("default body is not a Chatbot custom notification: %v", err)
			}
			text := strings.ToLower(chat.Content.Title + "\n" + chat.Content.Description + "\n" + strings.Join(chat.Content.NextSteps, "\n"))
			for _, active := range []string{"<!", "<@", "<#", "<http", "@here", "@channel", "@everyone"} {
				if strings.Contains(text, active) {
					t.Fatalf("chat text contains %q: %.300s", active, text)
				}
			}
		}
	})
}

// isStepError: err is one of the named types of internal/steperr, as a handler's top-level error must be.
func isStepError(err error) bool {
	t := reflect.TypeOf(err)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == reflect.TypeOf(steperr.InvalidInput{}).PkgPath()
}
