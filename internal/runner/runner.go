// Package runner runs a state machine of the stack (isolation or release) in one process: the real definition
// from statemachine/, the real step handlers behind aws-lambda-go's JSON handler interface, and the in-process ASL
// engine. Errors reach
// the engine as Step Functions reports a Lambda function's error: Error is the errorType aws-lambda-go sends (the
// Go type name), Cause the function's error payload as JSON.
package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

// StateMachineName is the isolation state machine's name, used in execution ARNs (the default of
// Config.StateMachineName), and the prefix of the functions' names (FunctionARN).
const StateMachineName = "ec2-isolation"

// ReleaseStateMachineName is the release state machine's name in execution ARNs.
const ReleaseStateMachineName = "ec2-isolation-release"

// Config says what to run against.
type Config struct {
	// Definition is the ASL text with its ${…FunctionArn} placeholders (ec2isolation.Definition or
	// ec2isolation.ReleaseDefinition). Only the functions it names are built, so Env needs only their settings.
	Definition []byte
	// StateMachineName is the name in execution ARNs; empty means StateMachineName (the isolation's).
	StateMachineName string
	Region           string
	Account          string
	// AWS returns the AWS configuration a function's clients are built from (one per function, so that an
	// emulator can tell the callers apart).
	AWS func(function string) aws.Config
	// Env is the functions' environment (the stack parameters), e.g. TAG_KEY, ISOLATION_GROUP_NAME.
	Env steps.Env
	// Log receives the handlers' structured logs.
	Log *slog.Logger
	// Engine sets the engine's clock; Region, Account and StateMachineName are filled in.
	Engine asl.Options
	// OnProgress, if set, is told each state's start and end and the execution's end as they happen (from the
	// goroutine of the state: concurrently for Parallel branches), e.g. for a live display.
	OnProgress func(Progress)
	// EvidenceQueueURL (issue 16) is ${EvidenceQueueUrl}, the queue the isolation sends its instance-settings jobs
	// to, reached with AWS(SQSCaller) (the simulator's: sim.Server.QueueURL). Empty: the runner keeps the jobs
	// itself (a run without a stack has no queue).
	EvidenceQueueURL string
	// EvidenceDefinition is the evidence state machine run for each job; nil: ec2isolation.EvidenceDefinition.
	EvidenceDefinition []byte
	// HoldEvidence leaves the queued jobs to the caller (ReceiveJobs, RunJob), as the bench does to admit them on
	// a window of its own; otherwise Start and Redrive run them (RunQueued) before they return.
	HoldEvidence bool
}

// Runner holds the loaded machine and the built handlers. It is safe for concurrent executions.
type Runner struct {
	machine  *asl.Machine
	handlers map[string]*environments // by function ARN
	opts     asl.Options
	log      *slog.Logger

	// The second stage (stage2.go), when the definition queues jobs.
	queue        jobQueue
	evidence     *Runner
	hold         bool
	jobs         pendingJobs
	mu           sync.Mutex // guards evidenceRuns
	evidenceRuns map[string][]*asl.Execution
}

// environments are a function's execution environments. Lambda runs concurrent invocations of a function in
// separate environments, and so must the runner: aws-lambda-go's handler returns its output in a buffer it
// reuses at its next call, so one handler serving two invocations at once hands one of them the other's output.
// An invocation takes an idle handler or builds one (the same wiring, from the same configuration), and gives it
// back once its output is copied.
type environments struct {
	build func() (lambda.Handler, error)
	mu    sync.Mutex
	idle  []lambda.Handler
}

func (e *environments) get() (lambda.Handler, error) {
	e.mu.Lock()
	if n := len(e.idle); n > 0 {
		h := e.idle[n-1]
		e.idle = e.idle[:n-1]
		e.mu.Unlock()
		return h, nil
	}
	e.mu.Unlock()
	return e.build()
}

func (e *environments) put(h lambda.Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.idle = append(e.idle, h)
}

// FunctionARN is the ARN the runner gives a function: the deployed stack's naming.
func FunctionARN(region, account, name string) string {
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s-%s", partition.Of(region), region, account, StateMachineName, name)
}

// New builds the handler of every function the definition names and loads the definition with the functions'
// ARNs substituted.
func New(c Config) (*Runner, error) {
	r := &Runner{handlers: map[string]*environments{}, log: c.Log, evidenceRuns: map[string][]*asl.Execution{}, hold: c.HoldEvidence}
	subs := map[string]string{}
	if bytes.Contains(c.Definition, []byte("${Partition}")) {
		subs["Partition"] = partition.Of(c.Region)
	}
	if bytes.Contains(c.Definition, []byte("${EvidenceQueueUrl}")) {
		if err := r.stage2(c, subs); err != nil {
			return nil, err
		}
	}
	for _, f := range Functions {
		if !bytes.Contains(c.Definition, []byte("${"+f.Substitution+"}")) {
			continue
		}
		arn := FunctionARN(c.Region, c.Account, f.Name)
		cfg, log := c.AWS(f.Name), c.Log.With("function", f.Name)
		env := &environments{build: func() (lambda.Handler, error) { return f.Build(cfg, c.Env, log) }}
		h, err := env.build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", f.Name, err)
		}
		env.put(h)
		r.handlers[arn] = env
		subs[f.Substitution] = arn
	}
	m, err := asl.Load(c.Definition, subs)
	if err != nil {
		return nil, fmt.Errorf("load state machine: %w", err)
	}
	r.machine = m
	r.opts = c.Engine
	name := c.StateMachineName
	if name == "" {
		name = StateMachineName
	}
	r.opts.Region, r.opts.Account, r.opts.StateMachineName = c.Region, c.Account, name
	if c.OnProgress != nil {
		r.opts.OnEvent = observe(r.opts.OnEvent, c.OnProgress, name)
	}
	return r, nil
}

// stage2 sets up the evidence queue and the evidence state machine's runner.
func (r *Runner) stage2(c Config, subs map[string]string) error {
	url := c.EvidenceQueueURL
	if url == "" {
		url = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", c.Region, c.Account, EvidenceQueueName)
		r.queue = &memQueue{url: url}
	} else {
		r.queue = sqsQueue{c: sqs.NewFromConfig(c.AWS(SQSCaller)), url: url}
	}
	subs["EvidenceQueueUrl"] = url
	ec := c
	ec.Definition, ec.StateMachineName, ec.EvidenceQueueURL = c.EvidenceDefinition, EvidenceStateMachineName, ""
	if ec.Definition == nil {
		ec.Definition = ec2isolation.EvidenceDefinition
	}
	ev, err := New(ec)
	if err != nil {
		return fmt.Errorf("evidence state machine: %w", err)
	}
	r.evidence = ev
	return nil
}

// Start runs an execution to its end, then (unless HoldEvidence) the evidence executions of the jobs it queued.
func (r *Runner) Start(ctx context.Context, name string, input json.RawMessage) *asl.Execution {
	e := r.machine.Start(ctx, name, input, r, r.opts)
	r.runQueued(ctx, name)
	return e
}

// Redrive continues a failed execution from its failed state, as RedriveExecution does, then (unless
// HoldEvidence) the evidence executions of the jobs it queued.
func (r *Runner) Redrive(ctx context.Context, e *asl.Execution) error {
	err := r.machine.Redrive(ctx, e, r)
	r.runQueued(ctx, e.Name)
	return err
}

// runQueued runs the queued jobs, then waits for those the execution name queued (another caller may have
// received them).
func (r *Runner) runQueued(ctx context.Context, name string) {
	if r.queue == nil || r.hold {
		return
	}
	if _, err := r.RunQueued(ctx); err != nil {
		r.log.Error("evidence jobs", "error", err)
		return
	}
	r.jobs.wait(ctx, name)
}

// Invoke implements asl.Invoker: it calls the function whose ARN is resource, as the Lambda service would.
func (r *Runner) Invoke(ctx context.Context, resource string, input json.RawMessage) (out json.RawMessage, err error) {
	if asl.IsSQSSendMessage(resource) {
		return r.sendMessage(ctx, input)
	}
	env, ok := r.handlers[resource]
	if !ok {
		return nil, &asl.TaskError{Name: "Lambda.ResourceNotFoundException", Cause: "Function not found: " + resource}
	}
	h, err := env.get()
	if err != nil {
		return nil, functionError(typeName(err), err.Error())
	}
	defer func() {
		// A panic ends the environment (Lambda starts a new one); otherwise it serves the next invocation.
		if p := recover(); p != nil {
			out, err = nil, functionError(typeName(p), fmt.Sprint(p))
			return
		}
		env.put(h)
	}()
	res, err := h.Invoke(ctx, input)
	if err != nil {
		return nil, functionError(typeName(err), err.Error())
	}
	// res is the handler's output buffer, which its next call reuses.
	return bytes.Clone(res), nil
}

// functionError is the error Step Functions records for a Lambda function error: the errorType, and the error
// payload ({"errorMessage","errorType"}) as the cause.
func functionError(errorType, message string) *asl.TaskError {
	cause, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{message, errorType})
	return &asl.TaskError{Name: errorType, Cause: string(cause)}
}

// typeName is aws-lambda-go's errorType: the name of the error's type, without the pointer.
func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "nil"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n := t.Name(); n != "" {
		return n
	}
	return strings.TrimPrefix(t.String(), "*")
}

// Function is one Lambda of the workflow, with its handler behind the JSON interface the Lambda runtime uses.
type Function struct {
	// Name is the functions/<Name> directory.
	Name string
	// Substitution is the DefinitionSubstitutions key of its ARN in the definitions (statemachine/*.asl.json).
	Substitution string
	// Build returns the handler wrapped by aws-lambda-go's lambda.NewHandler: the same JSON decoding and
	// encoding the deployed function does.
	Build func(cfg aws.Config, env steps.Env, log *slog.Logger) (lambda.Handler, error)
}

func function[In, Out any](name, substitution string, build steps.Build[In, Out]) Function {
	return Function{Name: name, Substitution: substitution,
		Build: func(cfg aws.Config, env steps.Env, log *slog.Logger) (lambda.Handler, error) {
			h, err := build(cfg, env, log)
			if err != nil {
				return nil, err
			}
			return lambda.NewHandler(h), nil
		}}
}

// Functions is every function of the stack: the isolation workflow's, then those only the release runs.
// (template.yaml has one AWS::Serverless::Function per entry; internal/template checks it.)
var Functions = []Function{
	function("validate-and-record", "ValidateAndRecordFunctionArn", steps.ValidateAndRecord),
	function("disassociate-profile", "DisassociateProfileFunctionArn", steps.DisassociateProfile),
	function("attach-isolation-profile", "AttachIsolationProfileFunctionArn", steps.AttachIsolationProfile),
	function("ensure-security-group", "EnsureSecurityGroupFunctionArn", steps.EnsureSecurityGroup),
	function("apply-security-group", "ApplySecurityGroupFunctionArn", steps.ApplySecurityGroup),
	function("snapshot-volumes", "SnapshotVolumesFunctionArn", steps.SnapshotVolumes),
	function("notify", "NotifyFunctionArn", steps.Notify),
	function("record-incident", "RecordIncidentFunctionArn", steps.RecordIncident),
	function("revoke-credentials", "RevokeCredentialsFunctionArn", steps.RevokeCredentials),
	function("preserve-evidence", "PreserveEvidenceFunctionArn", steps.PreserveEvidence),
	function("verify-containment", "VerifyContainmentFunctionArn", steps.VerifyContainment),
	function("read-incident-record", "ReadIncidentRecordFunctionArn", steps.ReadIncidentRecord),
	function("restore-security-groups", "RestoreSecurityGroupsFunctionArn", steps.RestoreSecurityGroups),
	function("restore-instance-profile", "RestoreInstanceProfileFunctionArn", steps.RestoreInstanceProfile),
	function("lift-credential-revocation", "LiftCredentialRevocationFunctionArn", steps.LiftCredentialRevocation),
	function("restore-evidence-settings", "RestoreEvidenceSettingsFunctionArn", steps.RestoreEvidenceSettings),
}
