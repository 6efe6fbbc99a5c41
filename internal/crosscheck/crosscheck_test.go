package crosscheck

// The cross-check runs statemachine/isolation.asl.json (or release.asl.json, or evidence.asl.json) twice for each case, each time against a fresh simulator
// seeded from the same scenario and with the same real handlers (runner.Functions, environment as cmd/isolation
// sets it):
//
//  1. in aws-local-stepfunctions (testdata/crosscheck.mjs under node), each Task state overridden to call its
//     function through a loopback bridge that answers as Lambda's Invoke API (bridge_test.go); the library has
//     no SQS integration, so "Queue instance settings" is overridden the same way, the bridge sending the job to
//     the simulator's evidence queue with the SDK (sendMessageHandler);
//  2. in our engine, internal/asl through internal/runner, as `isolation simulate` does.
//
// It compares, after normalising only what two runs may legitimately differ in (trace_test.go): the status,
// error and cause; the output; the top-level path of states, each with the input it was entered with; each
// Parallel branch's own path with inputs; and the payload each Task state sent its function. Retry waits are
// zero on both sides and the scenarios' latencies and AWS delays are removed, so a case takes under a second.
//
// Where aws-local-stepfunctions 3.0.0 differs from AWS, and how this test keeps that out of the comparison:
//
//   - It has no RedriveExecution. testdata/crosscheck.mjs emulates it for a failed top-level state (see
//     emulateRedrive there); our executions fail at "Notify failure", a top-level state.
//   - Its own Lambda client reports a function error's Cause as "errorType: errorMessage"; Step Functions
//     records the function's error payload. Our Task overrides throw an Error whose message is that payload,
//     and the library's Catch puts error.message in Cause, so Cause is what Step Functions would record.
//   - Inside a Parallel branch it sets $$.Execution.Input to the branch's input (AWS: the execution's input).
//     The definition reads $$.Execution.Input only in "Validate and record", at the top level.
//   - $$ holds only what the run's context option passes (plus Execution.Input and StartTime); the script
//     passes Execution.Id, Name and RedriveCount, all the definition reads.
//   - IsPresent: false and IsNull: false never match there (it evaluates `flag && test`). The definition uses
//     only IsPresent: true (under Not) and IsNull: true.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

// awsLocalStepFunctionsVersion is the version package.json pins.
const awsLocalStepFunctionsVersion = "3.0.0"

type crossCase struct {
	name     string
	scenario string // cmd/isolation/scenarios/<scenario>.json
	event    string // events/<event>
	tracking string // CONNECTION_TRACKING
	// redrive: when the execution fails, redrive it once (Node: emulated) and compare that run too.
	redrive bool
	// release: the compared execution runs the release definition (ec2isolation.ReleaseDefinition).
	release bool
	// isolated: before the compared execution, the instance is isolated (events/isolate.json) by our engine on
	// each side's simulator, so that the release finds its incident record.
	isolated bool
	// evidence: the compared execution runs the evidence definition (ec2isolation.EvidenceDefinition) on the job
	// that an isolation by our engine queued on each side's simulator (issue 16).
	evidence bool
	// tweak adjusts the loaded scenario for this comparison (after fastScenario).
	tweak func(t *testing.T, sc *sim.Scenario)
	// want is each run's expected status: a guard against both engines agreeing on something useless (such as
	// failing at the first state because the bridge is broken).
	want []asl.Status
}

var crossCases = []crossCase{
	{name: "isolate", scenario: "default", event: "isolate.json", want: []asl.Status{asl.StatusSucceeded}},
	{name: "isolate untrack-first", scenario: "default", event: "isolate.json", tracking: "untrack-first",
		want: []asl.Status{asl.StatusSucceeded}},
	// Refused by "Validate and record" (InvalidEvent / InstanceNotFound): Catch, "Collect failure", "Notify
	// failure", FAILED.
	{name: "non-matching-tag", scenario: "default", event: "non-matching-tag.json", want: []asl.Status{asl.StatusFailed}},
	{name: "other-resource", scenario: "default", event: "other-resource.json", want: []asl.Status{asl.StatusFailed}},
	{name: "unknown-instance", scenario: "default", event: "unknown-instance.json", want: []asl.Status{asl.StatusFailed}},
	{name: "release", scenario: "default", event: "release.json", want: []asl.Status{asl.StatusFailed}},
	// "Apply isolation security group" fails (UnauthorizedOperation, once per ENI): the network branch ends with
	// its failure marker, the IAM branch completes, "Notify failure" fails the execution; the redrive resumes at
	// Contain and succeeds.
	{name: "redrive", scenario: "redrive", event: "isolate.json", redrive: true, tweak: failEveryENIOnce,
		want: []asl.Status{asl.StatusFailed, asl.StatusSucceeded}},
	// The isolation profile does not exist: "Attach isolation profile" exhausts its ProfileNotReady retrier and
	// is caught inside the branch; the redrive fails the same way.
	{name: "missing-profile", scenario: "missing-profile", event: "isolate.json", redrive: true,
		want: []asl.Status{asl.StatusFailed, asl.StatusFailed}},
	// The record-and-IAM branch and the evidence branch both fail (Disassociate profile and Preserve evidence
	// refused once): "IAM containment and evidence preservation failed" lists both markers in branch order, the
	// network branch completes, the read-back is skipped, the volumes are snapshotted; the redrive resumes at
	// Contain, Verify containment runs, and succeeds.
	{name: "iam and evidence fail", scenario: "default", event: "isolate.json", redrive: true, tweak: failIAMAndEvidenceOnce,
		want: []asl.Status{asl.StatusFailed, asl.StatusSucceeded}},
	// The release definition. An instance never isolated: "Read incident record" refuses (NotIsolated), one
	// notification, FAILED. An isolated one: the three Restore branches, "Record release", "Notify success".
	{name: "release never isolated", scenario: "default", event: "release.json", release: true,
		want: []asl.Status{asl.StatusFailed}},
	{name: "isolate then release", scenario: "default", event: "release.json", release: true, isolated: true,
		want: []asl.Status{asl.StatusSucceeded}},
	// The evidence definition (issue 16) on the job the isolation queued: the three settings, silent success. Then
	// with its ModifyInstanceAttribute calls refused once: Catch, "Collect failure", "Notify failure" (fails with
	// EvidenceFailed); the redrive resumes at "Preserve evidence" and succeeds.
	{name: "evidence settings", scenario: "default", event: "isolate.json", evidence: true,
		want: []asl.Status{asl.StatusSucceeded}},
	{name: "evidence settings fail", scenario: "default", event: "isolate.json", evidence: true, redrive: true,
		tweak: failEvidenceSettingsOnce, want: []asl.Status{asl.StatusFailed, asl.StatusSucceeded}},
}

// evidenceQueue is the evidence queue each side's simulator gets.
const evidenceQueue = "ec2-isolation-evidence"

// failEvidenceSettingsOnce refuses the three ModifyInstanceAttribute calls of the first run of the evidence
// state machine's "Preserve evidence" (UnauthorizedOperation: not retried). The isolation makes none (its
// "Preserve evidence" is the fleet stage).
func failEvidenceSettingsOnce(t *testing.T, sc *sim.Scenario) {
	t.Helper()
	sc.Faults.Errors = append(sc.Faults.Errors,
		sim.ErrorFault{Action: "ModifyInstanceAttribute", Caller: "preserve-evidence", Code: "UnauthorizedOperation", FirstCalls: 3})
}

// queuedJob isolates the scenario's instance with our engine, leaving its evidence job queued, and returns the
// job: the evidence state machine's input.
func queuedJob(t *testing.T, srv *sim.Server, env steps.Env) []byte {
	t.Helper()
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env, Log: quiet, Engine: asl.Options{Sleep: noWait}, HoldEvidence: true})
	if err != nil {
		t.Fatal(err)
	}
	event, err := ec2isolation.Events.ReadFile("events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	e := r.Start(t.Context(), "crosscheck-setup", event)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("setup isolation: %s %s %s", e.Status, e.Error, e.Cause)
	}
	// The job is kept in the runner's own queue (no EvidenceQueueURL): the setup needs the job, not SQS.
	jobs, err := r.ReceiveJobs(t.Context(), 10)
	if err != nil || len(jobs) != 1 {
		var states []string
		for _, s := range e.History.Summary() {
			states = append(states, s.Name+":"+string(s.Status))
		}
		t.Fatalf("setup isolation queued %d jobs (%v), want 1; its states: %v", len(jobs), err, states)
	}
	return jobs[0].Input
}

// sendMessageHandler is the bridge's stand-in for the sqs:sendMessage integration: SendMessage to the
// simulator's queue with the SDK (as internal/runner performs it), answering its result.
func sendMessageHandler(srv *sim.Server) lambda.Handler {
	c := sqs.NewFromConfig(srv.AWSConfig(runner.SQSCaller))
	return lambda.NewHandler(func(ctx context.Context, in struct {
		QueueURL    string `json:"QueueUrl"`
		MessageBody string `json:"MessageBody"`
	}) (map[string]string, error) {
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(in.QueueURL), MessageBody: aws.String(in.MessageBody)})
		if err != nil {
			return nil, err
		}
		return map[string]string{"MessageId": aws.ToString(out.MessageId), "MD5OfMessageBody": aws.ToString(out.MD5OfMessageBody)}, nil
	})
}

func TestSamePathAndOutputAsAWSLocalStepFunctions(t *testing.T) {
	root := repoRoot(t)
	node := requireNode(t, root)
	for _, tc := range crossCases {
		t.Run(tc.name, func(t *testing.T) {
			scenarioFile := filepath.Join(root, "cmd", "isolation", "scenarios", tc.scenario+".json")
			scenarioJSON, err := os.ReadFile(scenarioFile)
			if err != nil {
				t.Fatal(err)
			}
			sc := fastScenario(t, scenarioFile)
			if tc.tweak != nil {
				tc.tweak(t, &sc)
			}
			event, err := ec2isolation.Events.ReadFile("events/" + tc.event)
			if err != nil {
				t.Fatal(err)
			}
			tracking := tc.tracking
			if tracking == "" {
				tracking = "direct"
			}
			name := "crosscheck-" + strings.ReplaceAll(tc.name, " ", "-")

			start := time.Now()
			theirs := runNode(t, node, root, sc, tracking, event, name, tc)
			nodeTook := time.Since(start)
			start = time.Now()
			ours := runOurs(t, sc, tracking, event, name, tc)
			t.Logf("aws-local-stepfunctions %v, internal/asl %v", nodeTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

			for i, r := range ours {
				t.Logf("run %d: %s %s %v retries %v", i, r.Status, r.Error, pathNames(r), r.Retries)
			}
			for i, r := range theirs {
				t.Logf("aws-local-stepfunctions run %d retries %v", i, r.Retries)
			}
			var got []asl.Status
			for _, r := range ours {
				got = append(got, asl.Status(r.Status))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("our engine's run statuses (-want +got):\n%s", diff)
			}
			want := newNormaliser(scenarioJSON, event).traces(t, theirs)
			have := newNormaliser(scenarioJSON, event).traces(t, ours)
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("internal/asl differs from aws-local-stepfunctions (-aws-local-stepfunctions +internal/asl):\n%s", diff)
			}
		})
	}
}

// fastScenario loads a built-in scenario without its latencies and AWS delays (association settling, group
// visibility, snapshot completion, profile visibility): they only add waiting and would make retries depend on
// timing. Each delayed behaviour then completes at the simulator's next request.
func fastScenario(t *testing.T, file string) sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario(file)
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults.Latency = sim.Latency{}
	sc.Behaviour = sim.Behaviour{}
	for i := range sc.InstanceProfiles {
		sc.InstanceProfiles[i].VisibleAfter = 0
	}
	// What the stack creates and the isolation records into: the incident bucket, and the profiles' roles (the
	// credential revocation puts its policy on them).
	if len(sc.Buckets) == 0 {
		sc.Buckets = []sim.S3Bucket{{Name: incidentBucket, Versioning: true}}
	}
	if len(sc.Queues) == 0 {
		sc.Queues = []sim.Queue{{Name: evidenceQueue}}
	}
	roles := map[string]bool{}
	for _, r := range sc.Roles {
		roles[r.Name] = true
	}
	for _, p := range sc.InstanceProfiles {
		if p.Role != "" && !roles[p.Role] {
			sc.Roles = append(sc.Roles, sim.Role{Name: p.Role})
			roles[p.Role] = true
		}
	}
	return sc
}

// incidentBucket is the incident bucket of a scenario that names none.
const incidentBucket = "ec2-isolation-incidents"

// failEveryENIOnce makes the redrive scenario's one-time ModifyNetworkInterfaceAttribute failure hit every ENI
// of the instance once. "Apply isolation security group" modifies the ENIs concurrently, so with the scenario's
// count of 1 the failure lands on whichever ENI's call reaches the simulator first, which differs from run to
// run whatever the engine. With one failure per ENI the first run fails and the redrive succeeds as before, and
// both are deterministic.
func failEveryENIOnce(t *testing.T, sc *sim.Scenario) {
	t.Helper()
	if len(sc.Instances) != 1 || len(sc.Faults.Errors) != 1 || sc.Faults.Errors[0].Action != "ModifyNetworkInterfaceAttribute" {
		t.Fatal("the redrive scenario changed: expected one instance and one ModifyNetworkInterfaceAttribute fault")
	}
	sc.Faults.Errors[0].Count = len(sc.Instances[0].NetworkInterfaces)
}

// failIAMAndEvidenceOnce refuses the first DisassociateIamInstanceProfile of "Disassociate profile" and the three
// ModifyInstanceAttribute calls of the first run of "Preserve evidence" (termination protection, shutdown
// behaviour, delete-on-termination of the one volume that has it: all of them, since its parts run at once and
// the error names the parts that failed) (UnauthorizedOperation: not retried).
func failIAMAndEvidenceOnce(t *testing.T, sc *sim.Scenario) {
	t.Helper()
	sc.Faults.Errors = append(sc.Faults.Errors,
		sim.ErrorFault{Action: "DisassociateIamInstanceProfile", Caller: "disassociate-profile", Code: "UnauthorizedOperation", FirstCalls: 1},
		sim.ErrorFault{Action: "ModifyInstanceAttribute", Caller: "preserve-evidence", Code: "UnauthorizedOperation", FirstCalls: 3})
}

// tagForRelease sets the instance's isolation tag to the release value, as the responder does before the release
// event arrives (the current tag decides: a release of an instance still tagged for isolation is Superseded).
func tagForRelease(t *testing.T, srv *sim.Server, sc sim.Scenario) {
	t.Helper()
	srv.Update(func(a *sim.Account) {
		for _, in := range sc.Instances {
			a.SetTag(in.ID, "Isolate", "release")
		}
	})
}

// startSim starts a fresh simulator for sc and the functions' environment, as cmd/isolation sets it (the stack
// parameters' defaults).
func startSim(t *testing.T, sc sim.Scenario, tracking string) (*sim.Server, steps.Env) {
	t.Helper()
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if len(sc.Topics) == 0 {
		t.Fatal("scenario has no SNS topic")
	}
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), map[string]string{"CONNECTION_TRACKING": tracking})
	return srv, func(k string) string { return env[k] }
}

var quiet = slog.New(slog.DiscardHandler)

// noWait makes retry waits zero-length (the Node side overrides them to 0 ms too).
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// machine is the definition and state machine name a case runs.
func machine(tc crossCase) ([]byte, string) {
	if tc.release {
		return ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName
	}
	if tc.evidence {
		return ec2isolation.EvidenceDefinition, runner.EvidenceStateMachineName
	}
	return ec2isolation.Definition, runner.StateMachineName
}

// isolateFirst isolates the scenario's instance with our engine (the case's setup, the same on both sides).
func isolateFirst(t *testing.T, srv *sim.Server, env steps.Env) {
	t.Helper()
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env, Log: quiet, Engine: asl.Options{Sleep: noWait}})
	if err != nil {
		t.Fatal(err)
	}
	event, err := ec2isolation.Events.ReadFile("events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	if e := r.Start(t.Context(), "crosscheck-setup", event); e.Status != asl.StatusSucceeded {
		t.Fatalf("setup isolation: %s %s %s", e.Status, e.Error, e.Cause)
	}
}

func runOurs(t *testing.T, sc sim.Scenario, tracking string, event []byte, name string, tc crossCase) []run {
	t.Helper()
	srv, env := startSim(t, sc, tracking)
	if tc.isolated {
		isolateFirst(t, srv, env)
	}
	if tc.release {
		tagForRelease(t, srv, sc)
	}
	if tc.evidence {
		event = queuedJob(t, srv, env)
	}
	def, smName := machine(tc)
	r, err := runner.New(runner.Config{
		Definition:       def,
		StateMachineName: smName,
		Region:           srv.Region(),
		Account:          srv.AccountID(),
		AWS:              srv.AWSConfig,
		Env:              env,
		Log:              quiet,
		Engine:           asl.Options{Sleep: noWait},
		// The isolation's job stays queued: the compared execution is the isolation's alone.
		EvidenceQueueURL: srv.QueueURL(evidenceQueue),
		HoldEvidence:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	e := r.Start(ctx, name, event)
	runs := []run{goRun(t, e, 0)}
	if tc.redrive && e.Status != asl.StatusSucceeded {
		if err := r.Redrive(ctx, e); err != nil {
			t.Fatalf("redrive: %v", err)
		}
		runs = append(runs, goRun(t, e, 1))
	}
	return runs
}

// nodeJob is the Node script's input (see testdata/crosscheck.mjs).
type nodeJob struct {
	Definition json.RawMessage   `json:"definition"`
	Bridge     string            `json:"bridge"`
	Functions  map[string]string `json:"functions"` // function ARN -> name
	Input      json.RawMessage   `json:"input"`
	Context    map[string]any    `json:"context"`
	Redrive    bool              `json:"redrive"`
}

func runNode(t *testing.T, node, root string, sc sim.Scenario, tracking string, event []byte, name string, tc crossCase) []run {
	t.Helper()
	srv, env := startSim(t, sc, tracking)
	if tc.isolated {
		isolateFirst(t, srv, env)
	}
	if tc.release {
		tagForRelease(t, srv, sc)
	}
	if tc.evidence {
		event = queuedJob(t, srv, env)
	}
	handlers := map[string]lambda.Handler{"sqs:sendMessage": sendMessageHandler(srv)}
	job := nodeJob{Functions: map[string]string{}, Input: event, Redrive: tc.redrive}
	definition, smName := machine(tc)
	part := partition.Of(srv.Region())
	job.Functions["arn:"+part+":states:::sqs:sendMessage"] = "sqs:sendMessage"
	def := strings.NewReplacer("${Partition}", part, "${EvidenceQueueUrl}", srv.QueueURL(evidenceQueue)).Replace(string(definition))
	for _, f := range runner.Functions {
		h, err := f.Build(srv.AWSConfig(f.Name), env, quiet.With("function", f.Name))
		if err != nil {
			t.Fatalf("build %s: %v", f.Name, err)
		}
		handlers[f.Name] = h
		arn := runner.FunctionARN(srv.Region(), srv.AccountID(), f.Name)
		job.Functions[arn] = f.Name
		def = strings.ReplaceAll(def, "${"+f.Substitution+"}", arn)
	}
	if strings.Contains(def, "${") {
		t.Fatal("definition has a placeholder runner.Functions does not substitute")
	}
	job.Definition = json.RawMessage(def)
	b := startBridge(t, handlers)
	job.Bridge = b.url
	job.Context = map[string]any{
		"Execution": map[string]any{
			"Id":   fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", srv.Region(), srv.AccountID(), smName, name),
			"Name": name,
		},
		"StateMachine": map[string]any{"Name": smName},
	}
	stdin, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--import", "./polyfill.mjs", "crosscheck.mjs")
	cmd.Dir = filepath.Join(root, "internal", "crosscheck", "testdata")
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node crosscheck.mjs: %v\n%s", err, stderr.String())
	}
	if p := b.failures(); len(p) > 0 {
		t.Fatalf("bridge: %s", strings.Join(p, "; "))
	}
	var out struct {
		Runs []run `json:"runs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	return out.Runs
}

// repoRoot is the directory of go.mod, above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// requireNode returns the node binary. Without node or the pinned aws-local-stepfunctions (`npm ci`) the test
// is skipped locally, and fails in CI (CI=true), where .ci/tools.sh installs both.
func requireNode(t *testing.T, root string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		err = checkPackage(root)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI installs it: .ci/tools.sh)", err)
		}
		t.Skipf("%v: run `npm ci` at the repository root (needs node); in CI (CI=true) this test fails instead", err)
	}
	return node
}

func checkPackage(root string) error {
	data, err := os.ReadFile(filepath.Join(root, "node_modules", "aws-local-stepfunctions", "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("node_modules/aws-local-stepfunctions is not installed")
	}
	if err != nil {
		return err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return fmt.Errorf("node_modules/aws-local-stepfunctions/package.json: %w", err)
	}
	if pkg.Version != awsLocalStepFunctionsVersion {
		return fmt.Errorf("node_modules/aws-local-stepfunctions is %s, package.json pins %s", pkg.Version, awsLocalStepFunctionsVersion)
	}
	return nil
}
