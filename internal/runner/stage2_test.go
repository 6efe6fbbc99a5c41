package runner_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	stage2Instance = "i-0a1b2c3d4e5f60718" // the default scenario's
	evidenceQueue  = "ec2-isolation-evidence"
)

// stage2Runner runs a definition against srv with the default settings and the scenario's evidence queue.
func stage2Runner(t *testing.T, srv *sim.Server, sc sim.Scenario, def []byte, machine string, hold bool) *runner.Runner {
	t.Helper()
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
	r, err := runner.New(runner.Config{Definition: def, StateMachineName: machine, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: stackenv.Getenv(env), Log: slog.New(slog.DiscardHandler),
		EvidenceQueueURL: srv.QueueURL(evidenceQueue), HoldEvidence: hold,
		// Retry waits take no time: the queueing failure retries eight times.
		Engine: asl.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func stage2Scenario(t *testing.T) sim.Scenario {
	sc := defaultScenario(t)
	sc.Queues = []sim.Queue{{Name: evidenceQueue}}
	return sc
}

// instanceState is what a responder checks: each ENI's groups (by name), the instance profile associated, and the
// three instance settings of the evidence stage.
type instanceState struct {
	groups                []string // per ENI, in device order: "name,name"
	profile               string
	terminationProtection bool
	shutdown              string
	deleteOnTermination   []string // volumes still deleted with the instance
}

func readInstance(t *testing.T, srv *sim.Server) instanceState {
	t.Helper()
	ctx := context.Background()
	c := ec2.NewFromConfig(srv.AWSConfig("responder"))
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{stage2Instance}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	var s instanceState
	enis := slices.Clone(inst.NetworkInterfaces)
	slices.SortFunc(enis, func(a, b ec2types.InstanceNetworkInterface) int {
		return int(aws.ToInt32(a.Attachment.DeviceIndex) - aws.ToInt32(b.Attachment.DeviceIndex))
	})
	for _, e := range enis {
		var names []string
		for _, g := range e.Groups {
			names = append(names, aws.ToString(g.GroupName))
		}
		s.groups = append(s.groups, strings.Join(names, ","))
	}
	if inst.IamInstanceProfile != nil {
		s.profile = aws.ToString(inst.IamInstanceProfile.Arn)
	}
	for _, m := range inst.BlockDeviceMappings {
		if aws.ToBool(m.Ebs.DeleteOnTermination) {
			s.deleteOnTermination = append(s.deleteOnTermination, aws.ToString(m.Ebs.VolumeId))
		}
	}
	s.terminationProtection = terminationProtected(t, srv)
	sd, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(stage2Instance),
		Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil {
		t.Fatal(err)
	}
	s.shutdown = aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value)
	return s
}

func contained(t *testing.T, s instanceState) {
	t.Helper()
	if len(s.groups) == 0 {
		t.Fatal("no ENI")
	}
	for i, g := range s.groups {
		if g != "ec2-isolation-quarantine" {
			t.Errorf("ENI %d has groups %q, want only the isolation group", i, g)
		}
	}
	if !strings.HasSuffix(s.profile, ":instance-profile/ec2-isolation-quarantine") {
		t.Errorf("instance profile %q, want the isolation profile", s.profile)
	}
}

// Issue 16, containment first: when the isolation execution ends, the instance is contained (every ENI on its
// isolation group, the isolation profile swapped in) while the instance settings are only queued; the settings job,
// run afterwards by the evidence state machine, applies the three of them.
func TestContainedBeforeTheSettingsJobRuns(t *testing.T) {
	sc := stage2Scenario(t)
	srv := simtest.Start(t, sc)
	before := readInstance(t, srv)
	if before.terminationProtection || before.shutdown != "terminate" || len(before.deleteOnTermination) == 0 {
		t.Fatalf("the scenario's instance already has its settings: %+v", before)
	}
	r := stage2Runner(t, srv, sc, ec2isolation.Definition, "", true)
	e := r.Start(context.Background(), "tag-1", isolateEvent(t))
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("isolation %s %s %s", e.Status, e.Error, e.Cause)
	}
	mid := readInstance(t, srv)
	contained(t, mid)
	if mid.terminationProtection != before.terminationProtection || mid.shutdown != before.shutdown ||
		!slices.Equal(mid.deleteOnTermination, before.deleteOnTermination) {
		t.Errorf("settings changed before the job ran: %+v, were %+v", mid, before)
	}
	queued := srv.QueueBodies(evidenceQueue)
	if len(queued) != 1 {
		t.Fatalf("queued %q, want one job", queued)
	}
	var msg workflow.EvidenceMessage
	if err := json.Unmarshal([]byte(queued[0]), &msg); err != nil || msg.EvidenceJob == nil ||
		msg.EvidenceJob.InstanceID != stage2Instance || msg.EvidenceJob.IsolationExecution != "tag-1" || msg.EvidenceJob.Record == nil {
		t.Fatalf("queued job %s (%v), want the instance, the execution and the record", queued[0], err)
	}
	if n := len(r.Evidence("tag-1")); n != 0 {
		t.Errorf("%d evidence executions ran while held", n)
	}

	jobs, err := r.ReceiveJobs(context.Background(), 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ReceiveJobs = %+v, %v", jobs, err)
	}
	ev, err := r.RunJob(context.Background(), jobs[0])
	if err != nil || ev.Status != asl.StatusSucceeded || ev.Name != "tag-1" || !strings.Contains(ev.ID, ":"+runner.EvidenceStateMachineName+":") {
		t.Fatalf("evidence execution %+v, %v", ev, err)
	}
	after := readInstance(t, srv)
	contained(t, after)
	if !after.terminationProtection || after.shutdown != "stop" || len(after.deleteOnTermination) != 0 {
		t.Errorf("after the settings job: protection %v, shutdown %q, still deleted on termination %v; want on, stop, none",
			after.terminationProtection, after.shutdown, after.deleteOnTermination)
	}
	if left := srv.QueueBodies(evidenceQueue); len(left) != 0 {
		t.Errorf("the job is still queued: %q", left)
	}
	// The isolation's notification says the settings were queued.
	if msgs := srv.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Message, "queued for the evidence state machine") {
		t.Errorf("notifications %d; want one saying the settings were queued", len(msgs))
	}
}

// Without HoldEvidence (simulate, run) the runner runs the job before Start returns: the isolation ends with every
// evidence setting in effect, and the evidence execution is there to show.
func TestStartRunsTheQueuedJob(t *testing.T) {
	sc := stage2Scenario(t)
	srv := simtest.Start(t, sc)
	r := stage2Runner(t, srv, sc, ec2isolation.Definition, "", false)
	if e := r.Start(context.Background(), "tag-1", isolateEvent(t)); e.Status != asl.StatusSucceeded {
		t.Fatalf("isolation %s %s %s", e.Status, e.Error, e.Cause)
	}
	s := readInstance(t, srv)
	contained(t, s)
	if !s.terminationProtection || s.shutdown != "stop" || len(s.deleteOnTermination) != 0 {
		t.Errorf("settings %+v, want all applied", s)
	}
	if ev := r.Evidence("tag-1"); len(ev) != 1 || ev[0].Status != asl.StatusSucceeded {
		t.Errorf("evidence executions %v, want one SUCCEEDED", ev)
	}
}

// A job for an instance released before it ran changes nothing, and says so; its execution succeeds.
func TestSettingsJobAfterTheReleaseChangesNothing(t *testing.T) {
	sc := stage2Scenario(t)
	srv := simtest.Start(t, sc)
	before := readInstance(t, srv)
	r := stage2Runner(t, srv, sc, ec2isolation.Definition, "", true)
	if e := r.Start(context.Background(), "tag-1", isolateEvent(t)); e.Status != asl.StatusSucceeded {
		t.Fatalf("isolation %s %s %s", e.Status, e.Error, e.Cause)
	}
	rel := stage2Runner(t, srv, sc, ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, true)
	event, err := ec2isolation.Events.ReadFile("events/release.json")
	if err != nil {
		t.Fatal(err)
	}
	srv.ApplyTagEvent(event)
	if e := rel.Start(context.Background(), "release-1", event); e.Status != asl.StatusSucceeded {
		t.Fatalf("release %s %s %s", e.Status, e.Error, e.Cause)
	}
	released := readInstance(t, srv)
	srv.ResetCalls()
	jobs, err := r.ReceiveJobs(context.Background(), 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ReceiveJobs = %+v, %v", jobs, err)
	}
	ev, err := r.RunJob(context.Background(), jobs[0])
	if err != nil || ev.Status != asl.StatusSucceeded {
		t.Fatalf("evidence execution %+v, %v", ev, err)
	}
	after := readInstance(t, srv)
	if after.terminationProtection != before.terminationProtection || after.shutdown != before.shutdown ||
		!slices.Equal(after.deleteOnTermination, before.deleteOnTermination) || !slices.Equal(after.groups, released.groups) {
		t.Errorf("after the job: %+v; want as released: %+v", after, released)
	}
	for _, c := range srv.Calls() {
		if c.Mutating && c.Service == "ec2" {
			t.Errorf("the job called %s", c.Action)
		}
	}
	if !strings.Contains(string(ev.Output), "was released at") {
		t.Errorf("the evidence execution does not say the instance was released: %s", ev.Output)
	}
}

// The simulator refuses the evidence queue's SendMessage: the isolation reports "Queue instance settings" failed
// (one failure notification, the execution FAILED and redrivable), and the instance is contained all the same.
func TestQueueingFailureIsReportedAndContainmentIsDone(t *testing.T) {
	sc := stage2Scenario(t)
	sc.Faults.Errors = []sim.ErrorFault{{Service: "sqs", Action: "SendMessage", Code: "KmsAccessDenied",
		Message: "The ciphertext refers to a customer master key that does not exist"}}
	srv := simtest.Start(t, sc)
	r := stage2Runner(t, srv, sc, ec2isolation.Definition, "", false)
	e := r.Start(context.Background(), "tag-1", isolateEvent(t))
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" || !strings.Contains(e.Cause, "Queue instance settings") {
		t.Fatalf("isolation %s %s %q, want FAILED IsolationFailed at Queue instance settings", e.Status, e.Error, e.Cause)
	}
	contained(t, readInstance(t, srv))
	msgs := srv.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Queue instance settings") || !strings.Contains(msgs[0].Message, "SQS.AmazonSQSException") {
		t.Fatalf("%d notifications; want one naming Queue instance settings and SQS.AmazonSQSException", len(msgs))
	}
	if n := len(srv.QueueBodies(evidenceQueue)); n != 0 || len(r.Evidence("tag-1")) != 0 {
		t.Errorf("%d jobs queued, %d evidence executions; want none", n, len(r.Evidence("tag-1")))
	}

	// Fixed, then redriven: the job is queued and run, and the settings are in effect.
	srv.Update(func(a *sim.Account) { a.Faults.Errors = nil })
	if err := r.Redrive(context.Background(), e); err != nil || e.Status != asl.StatusSucceeded {
		t.Fatalf("redrive: %v, %s %s %s", err, e.Status, e.Error, e.Cause)
	}
	s := readInstance(t, srv)
	contained(t, s)
	if !s.terminationProtection || s.shutdown != "stop" || len(s.deleteOnTermination) != 0 {
		t.Errorf("after the redrive: settings %+v, want all applied", s)
	}
}
