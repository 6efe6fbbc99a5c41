package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// nearMissInput is what the template's NearMissRule target hands Notify for a raw event: its InputTemplate with
// the stack parameters substituted (!Sub), then EventBridge's <id> and <aws.events.event.json> (the whole event).
func nearMissInput(t *testing.T, params map[string]string, event []byte) workflow.NotifyInput {
	t.Helper()
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	targets, _ := tpl.Resources["NearMissRule"].Properties["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("NearMissRule targets %v, want Notify only", targets)
	}
	target, _ := targets[0].(map[string]any)
	if arn, _ := template.GetAttResource(target["Arn"], "Arn"); arn != "NotifyFunction" {
		t.Fatalf("NearMissRule targets %v, want NotifyFunction", target["Arn"])
	}
	it, _ := target["InputTransformer"].(map[string]any)
	sub, _ := it["InputTemplate"].(map[string]any)
	text, ok := sub["Fn::Sub"].(string)
	if !ok {
		t.Fatalf("InputTemplate %v, want a !Sub string", it["InputTemplate"])
	}
	text = regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(text, func(m string) string { return params[m[2:len(m)-1]] })
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	paths, _ := it["InputPathsMap"].(map[string]any)
	if paths["id"] != "$.id" {
		t.Fatalf("InputPathsMap %v", paths)
	}
	text = strings.ReplaceAll(text, "<id>", ev.ID)
	text = strings.ReplaceAll(text, "<aws.events.event.json>", string(event))
	var in workflow.NotifyInput
	if err := json.Unmarshal([]byte(text), &in); err != nil {
		t.Fatalf("the transformed input is not Notify's input: %v\n%s", err, text)
	}
	return in
}

func nearMissEvent(value string) []byte {
	ev, _ := json.Marshal(map[string]any{
		"version": "0", "id": "0f1e2d3c-0000-4000-8000-000000000001", "detail-type": "Tag Change on Resource",
		"source": "aws.tag", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
		"resources": []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instance},
		"detail": map[string]any{"changed-tag-keys": []string{"Isolate"}, "service": "ec2", "resource-type": "instance",
			"version": 4, "tags": map[string]string{"Isolate": value, "Name": "web-1"}},
	})
	return ev
}

var stackParams = map[string]string{"IsolationTagKey": "Isolate", "IsolationTagValue": "true", "ReleaseTagValue": "release"}

// Issue 13 item 5: a near-miss tag publishes one notification saying nothing was done, why, and what to set.
func TestNearMissTagIsAnnounced(t *testing.T) {
	for value, why := range map[string]string{
		"True":     `differs from "true" (the isolate value) in case`,
		"true ":    `spaces around "true" (the isolate value)`,
		"RELEASE":  `differs from "release" (the release value) in case`,
		"isolate!": `neither "true" (isolates) nor "release" (releases)`,
	} {
		t.Run(value, func(t *testing.T) {
			srv := start(t, scenario())
			out, err := newHandler(t, srv).Handle(context.Background(), nearMissInput(t, stackParams, nearMissEvent(value)))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			p := onlyMessage(t, srv)
			if out.MessageID != p.msg.MessageID {
				t.Errorf("message id %q, published %q", out.MessageID, p.msg.MessageID)
			}
			containsAll(t, "subject", p.msg.Subject, "NOT started", instance)
			containsAll(t, "email", p.email, "NOTHING WAS DONE", instance, "is NOT isolated", `"`+value+`"`, why, "Isolate=true")
			containsAll(t, "chat", p.chatbot.Content.Title+p.chatbot.Content.Description, "nothing was done", "NOT isolated", why)
			if len(p.chatbot.Content.NextSteps) == 0 || !strings.Contains(p.chatbot.Content.NextSteps[0], "Isolate=true") {
				t.Errorf("chat next steps %q: want the exact tag to set", p.chatbot.Content.NextSteps)
			}
			for _, wrong := range []string{"ISOLATED", "SUCCEEDED", "redrive"} {
				if strings.Contains(p.email, wrong) || strings.Contains(p.msg.Subject, wrong) {
					t.Errorf("a near miss says %q:\n%s", wrong, p.email)
				}
			}
		})
	}
}

// The exact values are not near misses (the rule excludes them; an input that says otherwise is refused, nothing
// published).
func TestNearMissRefusesTheWorkflowValues(t *testing.T) {
	for _, value := range []string{"true", "release"} {
		srv := start(t, scenario())
		_, err := newHandler(t, srv).Handle(context.Background(), nearMissInput(t, stackParams, nearMissEvent(value)))
		var ii *steperr.InvalidInput
		if !errors.As(err, &ii) {
			t.Errorf("%s: error %v, want InvalidInput", value, err)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%s: %d messages published", value, n)
		}
	}
}
