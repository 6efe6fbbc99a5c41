package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

//go:embed scenarios/*.json
var scenarios embed.FS

// Stack parameters' defaults, as template.yaml has them.
const (
	defaultTagKey       = "Isolate"
	defaultTagValue     = "true"
	defaultGroupName    = "ec2-isolation-quarantine"
	defaultProfileName  = "ec2-isolation-quarantine"
	defaultReleaseValue = "release"
)

type simulateFlags struct {
	scenario, event, tracking string
	tagKey, tagValue          string
	groupName, profileName    string
	json, io, logs, redrive   bool
	release                   bool
	releaseValue              string
	speed                     float64
	// reconcile runs one reconciler pass instead of an execution (simulate_reconcile.go); running lists the
	// instances that have an execution already running.
	reconcile bool
	running   string
}

func parseSimulateFlags(args []string, stderr io.Writer) (simulateFlags, error) {
	var f simulateFlags
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: isolation simulate [flags]\n\nRuns statemachine/isolation.asl.json with the real step handlers against an embedded simulated AWS\naccount, prints the execution history and the instance before and after. Exits 1 when the execution fails.\n\nBuilt-in scenarios: %s\n\nflags:\n", strings.Join(builtinScenarios(), ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&f.scenario, "scenario", "default", "a built-in scenario's name, or a scenario file (docs/scenario.md)")
	fs.StringVar(&f.event, "event", "", "the EventBridge event file that starts the execution (default: events/isolate.json)")
	fs.StringVar(&f.tracking, "tracking", "direct", "connection tracking mode: direct or untrack-first")
	fs.StringVar(&f.tagKey, "tag-key", defaultTagKey, "stack parameter: the tag key that triggers isolation")
	fs.StringVar(&f.tagValue, "tag-value", defaultTagValue, "stack parameter: the tag value that triggers isolation")
	fs.StringVar(&f.groupName, "group-name", defaultGroupName, "stack parameter: the isolation security group's name")
	fs.StringVar(&f.profileName, "profile-name", defaultProfileName, "stack parameter: the isolation instance profile's name")
	fs.BoolVar(&f.redrive, "redrive", false, "if the execution fails, redrive it once (as after fixing the cause)")
	fs.BoolVar(&f.release, "release", false, "after the isolation, release the instance: run statemachine/release.asl.json with the tag changed to the release value, then check that every restorable attribute is back (default scenario: release)")
	fs.StringVar(&f.releaseValue, "release-value", defaultReleaseValue, "stack parameter: the tag value that releases an instance")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.BoolVar(&f.io, "io", false, "print each state's input and output")
	fs.BoolVar(&f.logs, "logs", false, "print the handlers' JSON logs to stderr")
	fs.BoolVar(&f.reconcile, "reconcile", false, "run one pass of the reconciler over the scenario's tagged instances, with both state machines deployed in the simulated account (default scenario: reconcile)")
	fs.StringVar(&f.running, "running", "", "with --reconcile: instance ids (comma-separated) for which an execution started by the tag event is still running")
	fs.Float64Var(&f.speed, "speed", 1, "run simulated time this many times faster than real time (retry waits, AWS delays)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkSpeed(f.speed); err != nil {
		return f, err
	}
	if err := checkTracking(f.tracking); err != nil {
		return f, err
	}
	scenarioSet := false
	fs.Visit(func(fl *flag.Flag) { scenarioSet = scenarioSet || fl.Name == "scenario" })
	if f.release && !scenarioSet {
		f.scenario = "release"
	}
	if f.reconcile && !scenarioSet {
		f.scenario = "reconcile"
	}
	if f.release && f.releaseValue == f.tagValue {
		return f, fmt.Errorf("--release-value must differ from --tag-value (both %q)", f.tagValue)
	}
	return f, nil
}

func builtinScenarios() []string {
	entries, _ := scenarios.ReadDir("scenarios")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	return names
}

func loadEvent(file string) (json.RawMessage, error) {
	if file == "" {
		return ec2isolation.Events.ReadFile("events/isolate.json")
	}
	return os.ReadFile(file)
}

// result is what simulate and run report (and print with -json).
type result struct {
	// Scenario is simulate's; Account, Region and Caller are run's (the configured account).
	Scenario string `json:"scenario,omitempty"`
	Account  string `json:"account,omitempty"`
	Region   string `json:"region,omitempty"`
	Caller   string `json:"caller,omitempty"`
	// InstanceID is the instance the event names ("" when it names none).
	InstanceID string            `json:"instanceId,omitempty"`
	Before     *inspect.Instance `json:"before,omitempty"`
	Executions []executionReport `json:"executions"`
	After      *inspect.Instance `json:"after,omitempty"`
	// Released is the instance after the release (simulate --release); Restored compares it with Before.
	Released      *inspect.Instance   `json:"released,omitempty"`
	Restored      *restoreCheck       `json:"restored,omitempty"`
	Notifications []notificationShown `json:"notifications"`
	// Isolated is run's final check of the instance (nil for simulate); Problems says what is not isolated.
	Isolated *bool    `json:"isolated,omitempty"`
	Problems []string `json:"problems,omitempty"`
	// Evidence are the evidence state machine's executions (issue 16): the instance settings each isolation
	// execution queued, applied after it.
	Evidence []executionReport `json:"evidence,omitempty"`
}

type executionReport struct {
	Name         string         `json:"name"`
	ARN          string         `json:"executionArn"`
	RedriveCount int            `json:"redriveCount"`
	Status       asl.Status     `json:"status"`
	Error        string         `json:"error,omitempty"`
	Cause        string         `json:"cause,omitempty"`
	Duration     time.Duration  `json:"duration"`
	States       []asl.StateRun `json:"states"`
}

type notificationShown struct {
	Subject string `json:"subject"`
	Email   string `json:"email"`
	Default string `json:"default"`
}

func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseSimulateFlags(args, stderr)
	if code, done := flagsFailed("simulate", err, stderr); done {
		return code
	}
	if f.reconcile {
		return simulateReconcile(ctx, f, stdout, stderr)
	}
	res, err := runSimulation(ctx, f, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "isolation simulate:", userFacing(err))
		return 2
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "isolation simulate:", userFacing(err))
			return 2
		}
	} else {
		printResult(stdout, res, f.io)
	}
	if last := res.Executions[len(res.Executions)-1]; last.Status != asl.StatusSucceeded {
		return 1
	}
	if f.release && (res.Restored == nil || !res.Restored.OK()) {
		return 1
	}
	return 0
}

func runSimulation(ctx context.Context, f simulateFlags, stderr io.Writer) (result, error) {
	sc, err := loadScenario(f.scenario)
	if err != nil {
		return result{}, err
	}
	event, err := loadEventChecked(f.event)
	if err != nil {
		return result{}, fmt.Errorf("--event: %w", err)
	}
	if len(sc.Topics) == 0 {
		return result{}, errors.New("scenario: it has no SNS topic for the notifications")
	}
	if !slices.ContainsFunc(sc.Queues, func(q sim.Queue) bool { return q.Name == runner.EvidenceQueueName }) {
		// What the stack creates: the evidence queue the isolation sends its instance settings to (issue 16).
		sc.Queues = append(sc.Queues, sim.Queue{Name: runner.EvidenceQueueName})
	}
	clock := sim.NewScaledClock(f.speed)
	srv, err := sim.Start(sc, sim.WithClock(clock))
	if err != nil {
		return result{}, fmt.Errorf("start simulator: %w", err)
	}
	defer srv.Close()

	logOut := io.Discard
	if f.logs {
		logOut = stderr
	}
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), map[string]string{
		"TAG_KEY": f.tagKey, "TAG_VALUE": f.tagValue, "RELEASE_TAG_VALUE": f.releaseValue,
		"ISOLATION_GROUP_NAME": f.groupName, "ISOLATION_PROFILE_NAME": f.profileName,
		"CONNECTION_TRACKING": f.tracking,
	})
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	show := newProgress(stderr, f.json, clock.Now)
	r, err := simRunner(srv, clock, env, log, ec2isolation.Definition, runner.StateMachineName, show)
	if err != nil {
		return result{}, err
	}

	id := eventInstanceID(event)
	res := result{Scenario: f.scenario, InstanceID: id}
	reader := ec2.NewFromConfig(srv.AWSConfig("inspect"))
	if id != "" {
		if before, err := inspect.Read(ctx, reader, id); err == nil {
			res.Before = &before
		}
	}
	var before inspect.Restorable
	if f.release {
		if before, err = inspect.ReadRestorable(ctx, restorableClients(srv), id, ""); err != nil {
			return result{}, fmt.Errorf("read the instance before isolation: %w", err)
		}
	}
	name := "simulate-" + clock.Now().UTC().Format("20060102T150405")
	applyTagChange(ctx, srv, event)
	show.begin("Execution " + name + ":")
	exec := r.Start(ctx, name, event)
	show.end()
	res.Executions = append(res.Executions, report(exec))
	if f.redrive && exec.Status != asl.StatusSucceeded {
		show.begin("Redrive of " + name + ":")
		err := r.Redrive(ctx, exec)
		show.end()
		if err != nil {
			return result{}, err
		}
		res.Executions = append(res.Executions, report(exec))
	}
	if id != "" {
		if after, err := inspect.Read(ctx, reader, id); err == nil {
			res.After = &after
		}
	}
	if f.release && exec.Status == asl.StatusSucceeded {
		rr, err := simRunner(srv, clock, env, log, ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, show)
		if err != nil {
			return result{}, err
		}
		releaseEvent, err := withTagValue(event, f.tagKey, f.releaseValue)
		if err != nil {
			return result{}, fmt.Errorf("release event: %w", err)
		}
		applyTagChange(ctx, srv, releaseEvent)
		relName := "release-" + clock.Now().UTC().Format("20060102T150405")
		show.begin("Execution " + relName + ":")
		rel := rr.Start(ctx, relName, releaseEvent)
		show.end()
		res.Executions = append(res.Executions, report(rel))
		if released, err := inspect.Read(ctx, reader, id); err == nil {
			res.Released = &released
		}
		after, err := inspect.ReadRestorable(ctx, restorableClients(srv), id, before.Profile)
		if err != nil {
			return result{}, fmt.Errorf("read the instance after release: %w", err)
		}
		check := compareRestorable(before, after)
		res.Restored = &check
	}
	for _, e := range r.Evidence(name) {
		res.Evidence = append(res.Evidence, report(e))
	}
	for _, m := range srv.Messages() {
		res.Notifications = append(res.Notifications, showMessage(m.Subject, m.Message, m.MessageStructure))
	}
	return res, nil
}

// simRunner runs a definition (isolation or release) with the real handlers against the simulator, on its clock.
func simRunner(srv *sim.Server, clock *sim.ScaledClock, env map[string]string, log *slog.Logger, definition []byte, name string, show *progress) (*runner.Runner, error) {
	queue := "" // no evidence queue in the scenario: the runner keeps the jobs itself
	if srv.HasQueue(runner.EvidenceQueueName) {
		queue = srv.QueueURL(runner.EvidenceQueueName)
	}
	return runner.New(runner.Config{
		OnProgress:       show.callback(),
		EvidenceQueueURL: queue,
		Definition:       definition,
		StateMachineName: name,
		Region:           srv.Region(),
		Account:          srv.AccountID(),
		AWS:              srv.AWSConfig,
		Env:              stackenv.Getenv(env),
		Log:              log,
		Engine:           asl.Scaled(clock.Factor, clock.Now),
	})
}

func report(e *asl.Execution) executionReport {
	start := e.StartTime
	if e.RedriveCount > 0 {
		start = e.RedriveTime
	}
	var states []asl.StateRun
	for _, s := range e.History.Summary() {
		if s.RedriveCount == e.RedriveCount {
			states = append(states, s)
		}
	}
	return executionReport{
		Name: e.Name, ARN: e.ID, RedriveCount: e.RedriveCount, Status: e.Status, Error: e.Error, Cause: e.Cause,
		Duration: e.StopTime.Sub(start), States: states,
	}
}

// eventInstanceID is the instance the event names, or "" when it names none.
func eventInstanceID(event json.RawMessage) string {
	var ev workflow.TagEvent
	if json.Unmarshal(event, &ev) != nil {
		return ""
	}
	return ev.InstanceID()
}

// showMessage is a published notification as a responder reads it: the email body and the chat (default) body.
func showMessage(subject, message, structure string) notificationShown {
	n := notificationShown{Subject: subject, Email: message}
	var bodies map[string]string
	if structure == "json" && json.Unmarshal([]byte(message), &bodies) == nil {
		n.Email, n.Default = bodies["email"], bodies["default"]
	}
	return n
}
