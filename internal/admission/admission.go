// Package admission is the storm's admission starter (issue 16, docs/PERFORMANCE.md "Storm design"): the
// isolation rule's events queue in SQS, and this handler, fed by an event source mapping of small maximum
// concurrency, starts their executions in order while fewer than a window of isolation executions are running.
// An event it cannot start yet goes back to the queue (a batch item failure), never to the floor.
package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// API is the part of the Step Functions client the starter uses.
type API interface {
	ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, opts ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

// Settings of the starter.
type Settings struct {
	StateMachineARN string
	// Window is the most isolation executions running at once.
	Window int
	// MaxWait is how long one invocation waits for room before it hands the rest of its batch back to the queue;
	// Poll how often it looks. Sleep waits (nil: a timer honouring ctx).
	MaxWait, Poll time.Duration
	Sleep         func(ctx context.Context, d time.Duration) error
}

// Handler starts queued isolation events.
type Handler struct {
	api API
	s   Settings
	log *slog.Logger
}

// New checks the settings and returns the handler.
func New(api API, s Settings, log *slog.Logger) (*Handler, error) {
	switch {
	case s.StateMachineARN == "":
		return nil, &steperr.ConfigError{Reason: "the state machine ARN is empty"}
	case s.Window < 1:
		return nil, &steperr.ConfigError{Reason: fmt.Sprintf("the admission window is %d, want at least 1", s.Window)}
	case s.MaxWait < 0 || s.Poll <= 0 && s.MaxWait > 0:
		return nil, &steperr.ConfigError{Reason: "the wait and poll intervals must be positive"}
	}
	if s.Sleep == nil {
		s.Sleep = sleep
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{api: api, s: s, log: log}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Handle starts the batch's events in order while the window has room; the ones it could not start are returned
// as batch item failures (SQS delivers them again; the event source mapping must report batch item failures).
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	waited := time.Duration(0)
	i := 0
	for i < len(ev.Records) {
		running, err := h.running(ctx)
		if err != nil {
			h.log.Error("cannot count the running executions: the batch goes back to the queue", "error", err)
			break
		}
		for ; running < h.s.Window && i < len(ev.Records); i++ {
			r := ev.Records[i]
			if err := h.start(ctx, r); err != nil {
				h.log.Error("cannot start the isolation: the event goes back to the queue", "message", r.MessageId, "error", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				continue
			}
			running++
		}
		if i == len(ev.Records) || waited >= h.s.MaxWait {
			break
		}
		if err := h.s.Sleep(ctx, h.s.Poll); err != nil {
			break
		}
		waited += h.s.Poll
	}
	for ; i < len(ev.Records); i++ {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
	}
	if n := len(resp.BatchItemFailures); n > 0 {
		h.log.Info("window full: events back to the queue", "window", h.s.Window, "returned", n, "batch", len(ev.Records))
	}
	return resp, nil
}

// running counts the isolation executions running, up to the window (no need to count further).
func (h *Handler) running(ctx context.Context) (int, error) {
	n := 0
	p := sfn.NewListExecutionsPaginator(h.api, &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.s.StateMachineARN),
		StatusFilter: sfntypes.ExecutionStatusRunning, MaxResults: int32(min(h.s.Window, 1000))})
	for p.HasMorePages() && n < h.s.Window {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, steperr.FromAWS("list running executions", err)
		}
		n += len(out.Executions)
	}
	return n, nil
}

// nameSafe is what an execution name may not contain
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
var nameUnsafe = regexp.MustCompile("[\\s<>{}\\[\\]?*\"#%\\\\^|~`$&,;:/\\x00-\\x1f\\x7f-\\x9f]")

// executionName names the execution after the EventBridge event (its id), else the SQS message: a redelivered
// message then starts nothing twice (StartExecution with the name of an open execution and the same input returns
// that execution; of a closed one, ExecutionAlreadyExists).
func executionName(r events.SQSMessage) string {
	var e struct {
		ID string `json:"id"`
	}
	id := r.MessageId
	if json.Unmarshal([]byte(r.Body), &e) == nil && e.ID != "" {
		id = e.ID
	}
	name := "tag-" + nameUnsafe.ReplaceAllString(id, "-")
	if len(name) > 80 {
		name = name[:80]
	}
	return name
}

func (h *Handler) start(ctx context.Context, r events.SQSMessage) error {
	name := executionName(r)
	out, err := h.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(h.s.StateMachineARN),
		Name: aws.String(name), Input: aws.String(r.Body)})
	switch code := steperr.Code(err); {
	case err == nil:
		h.log.Info("started isolation", "execution", name, "executionArn", aws.ToString(out.ExecutionArn))
	case code == "ExecutionAlreadyExists":
		// Started by an earlier delivery of this event, and ended since: nothing to do.
		h.log.Info("isolation already started for this event", "execution", name)
	default:
		return steperr.FromAWS("start execution "+name, err)
	}
	return nil
}
