// Package admission is the storm's admission starter (issue 16, docs/PERFORMANCE.md "Storm design"): the
// isolation rule's events queue in SQS, and this handler, fed by an event source mapping of small maximum
// concurrency, starts their executions in order while fewer than a window of isolation executions are running.
// It also starts stage two, the evidence jobs the isolation executions queue ({"evidenceJob": {...}}), on the
// evidence state machine against a window of its own, so that the instance-settings calls never compete with
// containment for EC2's mutating bucket. An event or job it cannot start yet goes back to the queue (a batch
// item failure), never to the floor.
package admission

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
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
	// EvidenceStateMachineARN runs the stage-2 evidence jobs (issue 16); "": a job is refused (back to the
	// queue, logged), as a deployed starter always has it.
	EvidenceStateMachineARN string
	// EvidenceWindow is the most evidence executions running at once (at least 1 when EvidenceStateMachineARN
	// is set).
	EvidenceWindow int
}

// Handler starts queued isolation events and evidence jobs.
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
	case s.EvidenceStateMachineARN != "" && s.EvidenceWindow < 1:
		return nil, &steperr.ConfigError{Reason: fmt.Sprintf("the evidence window is %d, want at least 1", s.EvidenceWindow)}
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

// machine is one kind of work the starter admits: its state machine and window.
type machine struct {
	kind   string // "isolation" or "evidence", as the log says
	arn    string
	window int
}

func (h *Handler) machines() [2]machine {
	return [2]machine{
		{kind: "isolation", arn: h.s.StateMachineARN, window: h.s.Window},
		{kind: "evidence", arn: h.s.EvidenceStateMachineARN, window: h.s.EvidenceWindow},
	}
}

// Handle starts the batch's events and jobs, each kind in order while its window has room; the ones it could not
// start are returned as batch item failures (SQS delivers them again, and moves a message received
// maxReceiveCount times to the dead-letter queue; the event source mapping must report batch item failures).
// Either queue's batch may hold either kind.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var back []item
	var pending [2][]item
	for i, r := range ev.Records {
		it, err := parse(i, r)
		if err == nil && it.kind == kindEvidence && h.s.EvidenceStateMachineARN == "" {
			err = &steperr.ConfigError{Reason: "an evidence job, and the starter has no evidence state machine (" + EnvEvidenceStateMachineARN + ")"}
		}
		if err != nil {
			// Not retried sooner nor dropped: SQS moves it to the dead-letter queue after maxReceiveCount
			// receives, where the alarm and a responder find it; each receive logs why.
			h.itemLog(it).Error("cannot start this message: back to the queue (the dead-letter queue after maxReceiveCount receives)",
				"receiveCount", r.Attributes["ApproximateReceiveCount"], "error", err,
				// template.yaml's UnstartableMessageMetricFilter counts this field: SQS leaves such a message out
				// of its age metric, so no queue alarm would see it before the dead-letter queue, hours later.
				"unstartable", true)
			back = append(back, it)
			continue
		}
		pending[it.kind] = append(pending[it.kind], it)
	}
	ms := h.machines()
	var countErr [2]error // the last count of each kind, when it failed
	waited := time.Duration(0)
	for {
		for k, m := range ms {
			if len(pending[k]) == 0 {
				continue
			}
			// A count that fails (ListExecutions throttled: its bucket is small, and up to four starters poll
			// it) is tried again at the next poll, not handed back for a whole visibility timeout.
			running, err := h.running(ctx, m)
			if countErr[k] = err; err != nil {
				continue
			}
			for len(pending[k]) > 0 && running < m.window {
				it := pending[k][0]
				pending[k] = pending[k][1:]
				if err := h.start(ctx, m, it); err != nil {
					h.itemLog(it).Error("cannot start the "+m.kind+": back to the queue", "error", err)
					back = append(back, it)
					continue
				}
				running++
			}
		}
		if len(pending[0])+len(pending[1]) == 0 || waited >= h.s.MaxWait {
			break
		}
		if err := h.s.Sleep(ctx, h.s.Poll); err != nil {
			break
		}
		waited += h.s.Poll
	}
	for k, m := range ms {
		for _, it := range pending[k] {
			if countErr[k] != nil {
				h.itemLog(it).Error("cannot count the running "+m.kind+" executions: back to the queue", "error", countErr[k])
			} else {
				h.itemLog(it).Info(m.kind+" window full: back to the queue", "window", m.window)
			}
		}
		back = append(back, pending[k]...)
	}
	// In the batch's order, so that what goes back reads as it came.
	slices.SortFunc(back, func(a, b item) int { return cmp.Compare(a.index, b.index) })
	var resp events.SQSEventResponse
	for _, it := range back {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: it.message})
	}
	return resp, nil
}

// itemLog is the logger of one message: every line names the instance and the execution.
func (h *Handler) itemLog(it item) *slog.Logger {
	return h.log.With("instance", it.instance, "execution", it.name, "message", it.message)
}

// running counts the executions of m running, up to its window (no need to count further).
func (h *Handler) running(ctx context.Context, m machine) (int, error) {
	n := 0
	p := sfn.NewListExecutionsPaginator(h.api, &sfn.ListExecutionsInput{StateMachineArn: aws.String(m.arn),
		StatusFilter: sfntypes.ExecutionStatusRunning, MaxResults: int32(min(m.window, 1000))})
	for p.HasMorePages() && n < m.window {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, steperr.FromAWS("list running "+m.kind+" executions", err)
		}
		n += len(out.Executions)
	}
	return n, nil
}

func (h *Handler) start(ctx context.Context, m machine, it item) error {
	out, err := h.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(m.arn),
		Name: aws.String(it.name), Input: aws.String(it.input)})
	switch code := steperr.Code(err); {
	case err == nil:
		h.itemLog(it).Info("started "+m.kind, "executionArn", aws.ToString(out.ExecutionArn))
	case code == "ExecutionAlreadyExists":
		// Started by an earlier delivery of this message, and ended since: nothing to do.
		h.itemLog(it).Info(m.kind + " already started for this message")
	default:
		return steperr.FromAWS("start execution "+it.name, err)
	}
	return nil
}
