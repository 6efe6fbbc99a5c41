package moto_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
)

// The reconciler against moto: the seeded instance carries Isolate=true and no event ever came. The reconciler's
// handler, with all its calls going to moto (DescribeInstances, the groups, the associations, moto's Step
// Functions), finds it open and starts the isolation state machine in moto; moto records the execution but runs
// no state machine, so the test plays Step Functions: it reads the execution's input back from moto and runs the
// real definition and handlers with it against moto. The instance ends contained; the next pass, with the
// execution still RUNNING in moto, starts nothing.
func TestReconcilerIsolatesAnInstanceWithoutEventOnMoto(t *testing.T) {
	s := server(t)
	seeded, c := seed(t, s, moto.SeedOptions{})
	ctx := context.Background()
	cfg := s.Config("", "")
	states := sfn.NewFromConfig(cfg)
	var arns []string
	for _, m := range []struct {
		name string
		def  []byte
	}{{runner.StateMachineName, ec2isolation.Definition}, {runner.ReleaseStateMachineName, ec2isolation.ReleaseDefinition}} {
		out, err := states.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(m.name),
			Definition: aws.String(string(m.def)), RoleArn: aws.String("arn:aws:iam::" + moto.AccountID + ":role/ec2-isolation-states")})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.StateMachineArn))
	}
	n := names(seeded, secgroup.ModeDirect)
	env := n.Env()
	env[reconcile.EnvIsolationMachineARN], env[reconcile.EnvReleaseMachineARN] = arns[0], arns[1]
	settings, err := reconcile.SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := reconcile.New(ec2.NewFromConfig(cfg), states, s3.NewFromConfig(cfg), settings, log)

	rep, err := h.Handle(ctx, reconcile.Event{Time: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tagged != 1 || rep.LostEvents != 1 || rep.Started != 1 || rep.GroupsCreated != 2 {
		t.Fatalf("pass 1: %+v, want 1 tagged, 1 lost event, 1 started, 2 groups created (both VPCs)", rep)
	}
	list, err := states.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arns[0])})
	if err != nil || len(list.Executions) != 1 || !strings.HasPrefix(aws.ToString(list.Executions[0].Name), "reconcile-"+seeded.InstanceID+"-") {
		t.Fatalf("executions in moto: %+v %v, want the reconciler's one", list, err)
	}
	d, err := states.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: list.Executions[0].ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: moto.Region, Account: moto.AccountID,
		AWS: func(string) aws.Config { return cfg }, Env: func(k string) string { return env[k] }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e := r.Start(ctx, aws.ToString(d.Name), []byte(aws.ToString(d.Input)))
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("the execution the reconciler started: %s %s %s", e.Status, e.Error, e.Cause)
	}
	problems, err := moto.Verify(ctx, c, seeded)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	// moto leaves the execution RUNNING: the next pass sees it, and the instance contained.
	if d.Status != sfntypes.ExecutionStatusRunning {
		t.Logf("moto reports the execution %s", d.Status)
	}
	rep, err = h.Handle(ctx, reconcile.Event{Time: time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Contained != 1 || rep.Open != 0 || rep.Started != 0 || rep.GroupsCreated != 0 {
		t.Errorf("pass 2: %+v, want 1 contained, nothing started or created", rep)
	}
}
