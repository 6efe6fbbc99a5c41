package runner

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The second stage (issue 16). The isolation's "Queue instance settings" sends a job to the evidence queue
// (arn:…:states:::sqs:sendMessage); the runner performs that integration, then runs the evidence state machine
// for every job queued, as the admission starter does in AWS (its second event source): each execution is named
// after the isolation execution that queued the job.

// EvidenceStateMachineName is the evidence state machine's name in execution ARNs.
const EvidenceStateMachineName = "ec2-isolation-evidence"

// EvidenceQueueName is the evidence queue's name where the runner makes its own (no EvidenceQueueURL).
const EvidenceQueueName = "ec2-isolation-evidence"

// SQSCaller is the caller (Config.AWS) of the SQS calls the state machine makes: its execution role's.
const SQSCaller = "isolation-state-machine"

// Job is one stage-2 job received from the evidence queue.
type Job struct {
	MessageID     string
	ReceiptHandle string
	// Input is the evidence state machine's input: the message's evidenceJob object.
	Input json.RawMessage
	// IsolationExecution names the isolation execution that queued it (the evidence execution's name).
	IsolationExecution string
	InstanceID         string
}

// queueMessage is one received message.
type queueMessage struct{ id, handle, body string }

// jobQueue is the evidence queue: SQS through the SDK, or the runner's own in memory.
type jobQueue interface {
	send(ctx context.Context, url, body string) (id, md5 string, err error)
	receive(ctx context.Context, max int) ([]queueMessage, error)
	remove(ctx context.Context, handle string) error
}

// sqsQueue is a queue of SQS (the simulator's, or an account's).
type sqsQueue struct {
	c   *sqs.Client
	url string
}

func (q sqsQueue) send(ctx context.Context, url, body string) (string, string, error) {
	out, err := q.c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.MessageId), aws.ToString(out.MD5OfMessageBody), nil
}

func (q sqsQueue) receive(ctx context.Context, max int) ([]queueMessage, error) {
	// A long visibility timeout: the runner deletes each job once its execution has ended.
	out, err := q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: int32(max), VisibilityTimeout: 43200})
	if err != nil {
		return nil, err
	}
	var ms []queueMessage
	for _, m := range out.Messages {
		ms = append(ms, queueMessage{aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body)})
	}
	return ms, nil
}

func (q sqsQueue) remove(ctx context.Context, handle string) error {
	_, err := q.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(handle)})
	return err
}

// memQueue is the runner's own queue, for a run without a stack (no evidence queue in the account): the jobs
// never leave the process.
type memQueue struct {
	url  string
	mu   sync.Mutex
	n    int
	msgs []memMessage
}

type memMessage struct {
	queueMessage
	taken bool
}

func (q *memQueue) send(_ context.Context, url, body string) (string, string, error) {
	if url != q.url {
		return "", "", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "The specified queue does not exist."}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	id := "local-" + strconv.Itoa(q.n)
	q.msgs = append(q.msgs, memMessage{queueMessage: queueMessage{id, id, body}})
	sum := md5.Sum([]byte(body))
	return id, hex.EncodeToString(sum[:]), nil
}

func (q *memQueue) receive(_ context.Context, max int) ([]queueMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []queueMessage
	for i := range q.msgs {
		if len(out) == max {
			break
		}
		if !q.msgs[i].taken {
			q.msgs[i].taken = true
			out = append(out, q.msgs[i].queueMessage)
		}
	}
	return out, nil
}

func (q *memQueue) remove(_ context.Context, handle string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range q.msgs {
		if m.handle == handle {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			break
		}
	}
	return nil
}

// sendMessage performs the sqs:sendMessage integration: its effective parameters (MessageBody already text, see
// asl.IsSQSSendMessage) in, SendMessage's result out. Errors are named as Step Functions names this integration's:
// SQS.AmazonSQSException for an answer of the service (the cause carries its code and status), SQS.SdkClientException
// when none came (as LocalStack's emulation of the integration also names them).
func (r *Runner) sendMessage(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	var p struct {
		QueueURL    string `json:"QueueUrl"`
		MessageBody string `json:"MessageBody"`
	}
	if err := json.Unmarshal(input, &p); err != nil || p.QueueURL == "" || p.MessageBody == "" {
		return nil, &asl.TaskError{Name: "SQS.AmazonSQSException", Cause: "The request must contain QueueUrl and MessageBody (Service: AmazonSQS; Status Code: 400; Error Code: MissingParameter)"}
	}
	if r.queue == nil {
		return nil, &asl.TaskError{Name: "SQS.SdkClientException", Cause: "no evidence queue: the definition sends no job"}
	}
	id, sum, err := r.queue.send(ctx, p.QueueURL, p.MessageBody)
	if err != nil {
		return nil, sqsTaskError(err)
	}
	var msg workflow.EvidenceMessage
	if json.Unmarshal([]byte(p.MessageBody), &msg) == nil && msg.EvidenceJob != nil {
		r.jobs.add(msg.EvidenceJob.IsolationExecution, 1)
	}
	return json.Marshal(map[string]string{"MessageId": id, "MD5OfMessageBody": sum})
}

func sqsTaskError(err error) *asl.TaskError {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return &asl.TaskError{Name: "SQS.SdkClientException", Cause: err.Error()}
	}
	status, reqID := 400, ""
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var rid interface{ ServiceRequestID() string }
	if errors.As(err, &rid) {
		reqID = rid.ServiceRequestID()
	}
	return &asl.TaskError{Name: "SQS.AmazonSQSException",
		Cause: fmt.Sprintf("%s (Service: AmazonSQS; Status Code: %d; Error Code: %s; Request ID: %s; Proxy: null)", api.ErrorMessage(), status, api.ErrorCode(), reqID)}
}

// ReceiveJobs receives up to max (1 to 10) jobs from the evidence queue. A message that is not a job is logged
// and deleted: no execution could run it.
func (r *Runner) ReceiveJobs(ctx context.Context, max int) ([]Job, error) {
	if r.queue == nil {
		return nil, nil
	}
	ms, err := r.queue.receive(ctx, max)
	if err != nil {
		return nil, fmt.Errorf("receive from the evidence queue: %w", err)
	}
	var jobs []Job
	for _, m := range ms {
		var body struct {
			EvidenceJob json.RawMessage `json:"evidenceJob"`
		}
		var job workflow.EvidenceJob
		if json.Unmarshal([]byte(m.body), &body) != nil || len(body.EvidenceJob) == 0 || json.Unmarshal(body.EvidenceJob, &job) != nil || job.IsolationExecution == "" {
			r.log.Error("evidence queue: not a job, deleted", "messageId", m.id, "body", m.body)
			if err := r.queue.remove(ctx, m.handle); err != nil {
				return jobs, fmt.Errorf("delete message %s: %w", m.id, err)
			}
			continue
		}
		jobs = append(jobs, Job{MessageID: m.id, ReceiptHandle: m.handle, Input: body.EvidenceJob,
			IsolationExecution: job.IsolationExecution, InstanceID: job.InstanceID})
	}
	return jobs, nil
}

// RunJob runs the evidence state machine for the job (named after its isolation execution) to its end, then
// deletes the message: a failed evidence execution is redriven, not run again from the queue. As StartExecution
// refuses a name already used (the admission starter's ExecutionAlreadyExists), a job whose isolation execution
// already has its evidence execution (a redelivered message, a job queued again by a redrive of the isolation)
// starts nothing and returns nil.
func (r *Runner) RunJob(ctx context.Context, j Job) (*asl.Execution, error) {
	if r.evidence == nil {
		return nil, errors.New("the definition sends no evidence job")
	}
	r.mu.Lock()
	_, started := r.evidenceRuns[j.IsolationExecution]
	if !started {
		r.evidenceRuns[j.IsolationExecution] = []*asl.Execution{} // the name is taken from now on
	}
	r.mu.Unlock()
	var e *asl.Execution
	if started {
		r.log.Info("evidence job of an execution already started: nothing started", "execution", j.IsolationExecution, "instance", j.InstanceID)
	} else {
		e = r.evidence.Start(ctx, j.IsolationExecution, j.Input)
		r.mu.Lock()
		r.evidenceRuns[j.IsolationExecution] = append(r.evidenceRuns[j.IsolationExecution], e)
		r.mu.Unlock()
	}
	r.jobs.add(j.IsolationExecution, -1)
	if err := r.queue.remove(ctx, j.ReceiptHandle); err != nil {
		return e, fmt.Errorf("delete message %s: %w", j.MessageID, err)
	}
	return e, nil
}

// RunQueued runs every job it receives from the evidence queue, ten at a time, until it receives none, and returns
// the executions. Concurrent callers share the work: a job received by one is hidden from the others.
func (r *Runner) RunQueued(ctx context.Context) ([]*asl.Execution, error) {
	if r.queue == nil {
		return nil, nil
	}
	var all []*asl.Execution
	for {
		jobs, err := r.ReceiveJobs(ctx, 10)
		if err != nil || len(jobs) == 0 {
			return all, err
		}
		execs := make([]*asl.Execution, len(jobs))
		errs := make([]error, len(jobs))
		var wg sync.WaitGroup
		for i, j := range jobs {
			wg.Go(func() { execs[i], errs[i] = r.RunJob(ctx, j) })
		}
		wg.Wait()
		for _, e := range execs {
			if e != nil {
				all = append(all, e)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return all, err
		}
	}
}

// pendingJobs counts, per isolation execution, the jobs this runner sent that have not run yet: Start waits for its
// own, which a concurrent RunQueued may be running. It waits on a channel, never on a lock held meanwhile, so
// that a testing/synctest bubble sees the waiter durably blocked and its clock moves on.
type pendingJobs struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{}
}

func (p *pendingJobs) add(name string, d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n, p.changed = map[string]int{}, make(chan struct{})
	}
	if p.n[name] += d; p.n[name] <= 0 {
		delete(p.n, name)
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait returns once no job of name is pending (or ctx ends).
func (p *pendingJobs) wait(ctx context.Context, name string) {
	for {
		p.mu.Lock()
		if p.n[name] == 0 {
			p.mu.Unlock()
			return
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// Evidence returns the evidence executions run for the isolation execution name, in the order they ran.
func (r *Runner) Evidence(name string) []*asl.Execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*asl.Execution(nil), r.evidenceRuns[name]...)
}

// EvidenceRunner is the runner of the evidence state machine (nil when the definition queues no job): a test
// redrives a failed evidence execution with it.
func (r *Runner) EvidenceRunner() *Runner { return r.evidence }
