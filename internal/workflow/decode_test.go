package workflow_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const good = `{"version":"0","id":"x","detail-type":"Tag Change on Resource","source":"aws.tag","account":"123456789012",
"time":"2026-11-22T10:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
"detail":{"changed-tag-keys":["Isolate"],"service":"ec2","resource-type":"instance","version":3,"tags":{"Isolate":"true"}}}`

// An execution input of the wrong shape is an InvalidEvent naming the field, whether decoded alone or as the
// event of "Validate and record"'s input.
func TestMalformedEventIsInvalidEvent(t *testing.T) {
	tests := []struct{ name, event, says string }{
		{"resources is a string", strings.Replace(good, `"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"]`, `"resources":"arn"`, 1), "resources is a JSON string, want a list"},
		{"detail is a list", strings.Replace(good, `"detail":{`, `"detail":[],"x":{`, 1), "detail is a JSON array, want an object"},
		{"tag value is a number", strings.Replace(good, `"Isolate":"true"`, `"Isolate":1`, 1), "detail.tags is a JSON number, want a string"},
		{"version is a string", strings.Replace(good, `"version":3`, `"version":"3"`, 1), "detail.version is a JSON string, want a number"},
		{"a list", `[` + good + `]`, "it is a JSON array, want an object"},
		{"a string", `"i-0123456789abcdef0"`, "it is a JSON string, want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev workflow.TagEvent
			err := json.Unmarshal([]byte(tt.event), &ev)
			var invalid *steperr.InvalidEvent
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("decode event: %T %v, want InvalidEvent saying %q", err, err, tt.says)
			}
			var in workflow.ValidateInput
			err = json.Unmarshal([]byte(`{"executionName":"e","event":`+tt.event+`}`), &in)
			if !errors.As(err, &invalid) {
				t.Errorf("decode Validate's input: %T %v, want InvalidEvent", err, err)
			}
		})
	}
	var ev workflow.TagEvent
	if err := json.Unmarshal([]byte(good), &ev); err != nil || ev.InstanceID() != "i-0123456789abcdef0" || ev.Detail.Tags["Isolate"] != "true" {
		t.Errorf("the good event: %v %+v", err, ev)
	}
}

// Notify must decode its input whatever the execution input was: the failure it reports may be that the event
// was malformed.
func TestNotifyInputToleratesAMalformedEvent(t *testing.T) {
	tests := []struct {
		name, event string
		want        *workflow.TagEvent
	}{
		{"no event", ``, nil},
		{"null", `null`, nil},
		{"a list", `[1,2]`, nil},
		{"a string", `"x"`, nil},
		{"detail malformed, resources readable", `{"resources":["arn:aws:ec2:us-east-1:1:instance/i-0123456789abcdef0"],"detail":7}`,
			&workflow.TagEvent{Resources: []string{"arn:aws:ec2:us-east-1:1:instance/i-0123456789abcdef0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"outcome":"FAILED","executionName":"e","failures":[{"state":"Validate and record","error":"InvalidEvent","cause":"c","redriveCount":0}],"redriveCount":0`
			if tt.event != "" {
				doc += `,"event":` + tt.event
			}
			var in workflow.NotifyInput
			if err := json.Unmarshal([]byte(doc+`}`), &in); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, in.Event); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
			if in.Outcome != workflow.OutcomeFailed || len(in.Failures) != 1 || in.Failures[0].State != "Validate and record" {
				t.Errorf("the rest of the input was not decoded: %+v", in)
			}
		})
	}
	var in workflow.NotifyInput
	if err := json.Unmarshal([]byte(`{"outcome":"FAILED","event":`+good+`}`), &in); err != nil || in.Event == nil || in.Event.InstanceID() != "i-0123456789abcdef0" {
		t.Errorf("a good event: %v %+v", err, in.Event)
	}
}
