package permissions_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/permissions"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	instanceID = "i-0a1b2c3d4e5f60718"
	groupName  = "ec2-isolation-quarantine"
	vpcA       = "vpc-0a11111111111111a"
)

func env(tracking string) steps.Env {
	m := map[string]string{
		"TAG_KEY": "Isolate", "TAG_VALUE": "true",
		"ISOLATION_GROUP_NAME": groupName, "ISOLATION_PROFILE_NAME": "ec2-isolation-quarantine",
		"CONNECTION_TRACKING": tracking,
		"TOPIC_ARN":           "arn:aws:sns:us-east-1:123456789012:ec2-isolation-notifications",
	}
	return func(k string) string { return m[k] }
}

func loadScenario(t *testing.T) sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/default.json")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults = sim.Faults{}
	return sc
}

// isolate runs the whole workflow on the scenario and returns the calls the simulator recorded.
func isolate(t *testing.T, sc sim.Scenario, tracking string) []sim.Call {
	t.Helper()
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r, err := runner.New(runner.Config{
		Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env(tracking), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Engine: asl.Scaled(20, time.Now),
	})
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	if e := r.Start(context.Background(), "permissions-"+tracking, event); e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s: %s %s", e.Status, e.Error, e.Cause)
	}
	return srv.Calls()
}

// replace runs "Attach isolation profile" on an instance that still has its own profile associated: the
// ReplaceIamInstanceProfileAssociation path, which the workflow reaches only when the disassociation did not
// happen (e.g. another profile was associated meanwhile).
func replace(t *testing.T, sc sim.Scenario) []sim.Call {
	t.Helper()
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const fn = "attach-isolation-profile"
	h, err := steps.AttachIsolationProfile(srv.AWSConfig(fn), env("direct"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := h(context.Background(), workflow.InstanceInput{InstanceID: instanceID, ExecutionName: "permissions-replace"})
	if err != nil || !out.Changed {
		t.Fatalf("attach: %+v, %v", out, err)
	}
	return srv.Calls()
}

// TestRolesAllowExactlyWhatTheCodeCalls compares each function's role in template.yaml with the IAM actions
// derived from the calls the function made against the simulator, over runs that reach every code path that
// calls AWS: a cold isolation (groups created), untrack-first, an existing group with stray rules, the
// profile Replace path.
func TestRolesAllowExactlyWhatTheCodeCalls(t *testing.T) {
	tmpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}

	stray := loadScenario(t)
	stray.SecurityGroups = append(stray.SecurityGroups, sim.SecurityGroup{
		ID: "sg-0a1b2c3d4e5f00009", VpcID: vpcA, Name: groupName, Description: "isolation group, tampered with",
		Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}},
		Tags:    map[string]string{"ec2-isolation:managed": "true"},
	})

	var calls []sim.Call
	calls = append(calls, isolate(t, loadScenario(t), "direct")...)
	calls = append(calls, isolate(t, loadScenario(t), "untrack-first")...)
	calls = append(calls, isolate(t, stray, "direct")...)
	calls = append(calls, replace(t, loadScenario(t))...)

	got := permissions.Required(calls)
	want := tmpl.FunctionActions()
	for _, f := range runner.Functions {
		if _, ok := want[f.Name]; !ok {
			t.Errorf("template.yaml has no function for functions/%s", f.Name)
			continue
		}
		if diff := cmp.Diff(want[f.Name], got[f.Name]); diff != "" {
			t.Errorf("%s: the role's actions (-) differ from what the code called (+):\n%s", f.Name, diff)
		}
	}
	if len(want) != len(runner.Functions) {
		t.Errorf("template.yaml has %d functions, the workflow %d", len(want), len(runner.Functions))
	}
}
