package bench

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// Issue 16's two stages. Stage 1, the isolation state machine, sends each instance's settings job to the evidence
// queue through Step Functions' SQS service integration ("Queue instance settings", Resource
// arn:<partition>:states:::sqs:sendMessage); stage 2, the evidence state machine, runs one job. The harness plays
// the queue: the job goes to the storm's stage-2 starter (Step Functions calls SQS itself, so no Lambda
// invocation and no concurrency), after the simulated latency of an AWS answer. SQS standard queues support a
// nearly unlimited number of API calls per second
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html), so the
// queue throttles nothing.

// evidenceStateMachineName is the evidence state machine's name in its execution ARNs.
const evidenceStateMachineName = "ec2-isolation-evidence"

func isSendMessage(resource string) bool { return asl.IsSQSSendMessage(resource) }

// evidenceQueueURL is the bench's ${EvidenceQueueUrl}.
func evidenceQueueURL(region, account string) string {
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/ec2-isolation-evidence", region, account)
}

// evidenceJob is one stage-2 job: the evidence execution's name (the isolation execution's, so that a job sent
// twice starts one execution) and its input (the message's evidenceJob object).
type evidenceJob struct {
	Name  string
	Input json.RawMessage
}

var messageIDs atomic.Int64

// sendMessage is the sqs:sendMessage integration: its Parameters are SendMessage's request (QueueUrl,
// MessageBody; a JSON MessageBody is sent as its text), its result SendMessage's answer.
func (h *harness) sendMessage(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	var p struct {
		QueueURL    string          `json:"QueueUrl"`
		MessageBody json.RawMessage `json:"MessageBody"`
	}
	if err := json.Unmarshal(input, &p); err != nil || p.QueueURL == "" || len(p.MessageBody) == 0 {
		return nil, &asl.TaskError{Name: "SQS.MissingParameterException", Cause: "QueueUrl and MessageBody are required: " + string(input)}
	}
	body := []byte(p.MessageBody)
	var text string
	if json.Unmarshal(body, &text) == nil {
		body = []byte(text)
	}
	var msg struct {
		Job json.RawMessage `json:"evidenceJob"`
	}
	var job struct {
		Execution string `json:"isolationExecution"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || len(msg.Job) == 0 || json.Unmarshal(msg.Job, &job) != nil || job.Execution == "" {
		return nil, &asl.TaskError{Name: "SQS.InvalidMessageContentsException", Cause: "not an evidence job: " + string(body)}
	}
	if h.latency > 0 {
		if err := h.opts.Sleep(ctx, h.latency); err != nil {
			return nil, err
		}
	}
	if h.queue != nil {
		h.queue(evidenceJob{Name: job.Execution, Input: msg.Job})
	}
	sum := md5.Sum(body)
	return json.Marshal(map[string]string{"MessageId": "bench-" + strconv.FormatInt(messageIDs.Add(1), 10),
		"MD5OfMessageBody": hex.EncodeToString(sum[:])})
}

// stage2Key marks the context of an evidence execution: invokeStage tells the stages apart by it.
type stage2Key struct{}

// startEvidence runs one evidence execution to its end.
func (h *harness) startEvidence(ctx context.Context, job evidenceJob) *asl.Execution {
	return h.evidence.Start(context.WithValue(ctx, stage2Key{}, true), job.Name, job.Input, h, h.evidenceOpts)
}

func (h *harness) loadEvidence(c harnessConfig, subs map[string]string, env map[string]string) error {
	if c.Evidence == nil {
		return nil
	}
	m, err := asl.Load(c.Evidence, subs)
	if err != nil {
		return fmt.Errorf("load the evidence state machine: %w", err)
	}
	h.evidence, h.evidenceOpts = m, h.opts
	h.evidenceOpts.StateMachineName = evidenceStateMachineName
	return nil
}

// evidenceDefinition is the evidence state machine the storm's stage 2 runs.
func evidenceDefinition() ([]byte, error) { return ec2isolation.EvidenceDefinition, nil }

// stage2Caller prefixes the callers of stage 2's calls (the simulator's access keys), so that the tally can give
// each stage its own bounds.
const stage2Caller = "stage2-" // no "/": the access key is part of the signature's credential scope

// invokeStage calls the function through the runner of its stage.
func (h *harness) invokeStage(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error) {
	if ctx.Value(stage2Key{}) != nil {
		return h.run2.Invoke(ctx, resource, input)
	}
	return h.run.Invoke(ctx, resource, input)
}

// jobQueue is the evidence queue as the storm's stage-2 starter sees it: jobs in the order sent, each execution
// name once (a redelivered or re-sent job starts nothing twice, as StartExecution with a used name does not).
type jobQueue struct {
	jobs    chan evidenceJob // capacity: one per instance
	sent    atomic.Int64
	mu      sync.Mutex
	started map[string]bool
}

func newJobQueue(n int) *jobQueue {
	return &jobQueue{jobs: make(chan evidenceJob, n), started: map[string]bool{}}
}

func (q *jobQueue) send(j evidenceJob) {
	q.sent.Add(1)
	q.mu.Lock()
	dup := q.started[j.Name]
	q.started[j.Name] = true
	q.mu.Unlock()
	if !dup {
		q.jobs <- j
	}
}
