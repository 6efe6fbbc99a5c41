package admission

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// The two kinds of message the starter admits.
const (
	kindIsolation = 0 // an EventBridge tag event (the admission queue)
	kindEvidence  = 1 // a stage-2 evidence job (the evidence queue), {"evidenceJob": {...}}
)

// item is one message, read: what to start, and what the log names.
type item struct {
	index    int // in the batch
	message  string
	kind     int
	name     string // the execution's
	instance string
	input    string
}

// MalformedMessage is a message the starter cannot start anything from: it goes back to the queue, and after
// maxReceiveCount receives to the dead-letter queue.
type MalformedMessage struct{ MessageID, Reason string }

func (e *MalformedMessage) Error() string {
	return "message " + e.MessageID + " is malformed: " + e.Reason
}

// nameUnsafe is what an execution name may not contain
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
var nameUnsafe = regexp.MustCompile("[\\s<>{}\\[\\]?*\"#%\\\\^|~`$&,;:/\\x00-\\x1f\\x7f-\\x9f]")

// safeName is s made a valid execution name: unsafe characters replaced, at most 80 characters.
func safeName(s string) string {
	s = nameUnsafe.ReplaceAllString(s, "-")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// parse reads one message. A body with an "evidenceJob" member is a job: started on the evidence state machine,
// named after its isolation execution (a redelivered job then starts nothing twice), its input the job object;
// without instanceId or isolationExecution it is malformed. Any other JSON is a tag event, started as it came,
// named after the EventBridge event's id (else the message's); a body that is not JSON is malformed (Step
// Functions would refuse it as input).
func parse(index int, r events.SQSMessage) (item, error) {
	it := item{index: index, message: r.MessageId, kind: kindIsolation, input: r.Body}
	bad := func(reason string) (item, error) {
		return it, &MalformedMessage{MessageID: r.MessageId, Reason: reason}
	}
	if !json.Valid([]byte(r.Body)) {
		return bad("the body is not JSON")
	}
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(r.Body), &top) != nil {
		// JSON, but not an object: a tag event only Validate can refuse (and say so in its notification).
		it.name = safeName("tag-" + r.MessageId)
		return it, nil
	}
	if raw, ok := top["evidenceJob"]; ok {
		it.kind = kindEvidence
		var job struct {
			InstanceID         any `json:"instanceId"`
			IsolationExecution any `json:"isolationExecution"`
		}
		if json.Unmarshal(raw, &job) != nil {
			return bad("evidenceJob is not a JSON object")
		}
		id, _ := job.InstanceID.(string)
		exec, _ := job.IsolationExecution.(string)
		it.instance, it.name, it.input = id, safeName(exec), string(raw)
		switch {
		case id == "":
			return bad("evidenceJob has no instanceId (a string)")
		case exec == "":
			return bad("evidenceJob has no isolationExecution (a string)")
		}
		return it, nil
	}
	var ev struct {
		ID        string `json:"id"`
		Resources []any  `json:"resources"`
	}
	_ = json.Unmarshal([]byte(r.Body), &ev) // a field of another type reads as missing; Validate judges the event
	id := r.MessageId
	if ev.ID != "" {
		id = ev.ID
	}
	it.name = safeName("tag-" + id)
	if len(ev.Resources) > 0 {
		if arn, ok := ev.Resources[0].(string); ok {
			if _, inst, ok := strings.Cut(arn, ":instance/"); ok {
				it.instance = inst
			}
		}
	}
	return it, nil
}
