package runner_test

import (
	"log/slog"
	"slices"
	"testing"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// defaultScenario is `isolation simulate`'s default account (an instance tagged Isolate=true with three ENIs in two
// VPCs, an instance profile, two volumes) without its faults and delays, with the profiles' roles (the revocation
// writes to them) and an incident bucket.
func defaultScenario(t *testing.T) sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/default.json")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults = sim.Faults{}
	sc.Behaviour = sim.Behaviour{}
	for i := range sc.InstanceProfiles {
		sc.InstanceProfiles[i].VisibleAfter = 0
		if r := sc.InstanceProfiles[i].Role; r != "" && !slices.ContainsFunc(sc.Roles, func(x sim.Role) bool { return x.Name == r }) {
			sc.Roles = append(sc.Roles, sim.Role{Name: r})
		}
	}
	if len(sc.Buckets) == 0 {
		sc.Buckets = []sim.S3Bucket{{Name: "ec2-isolation-incidents", Versioning: true}}
	}
	return sc
}

// isolationRunner runs the isolation definition with the real handlers against srv, the stack's default settings.
func isolationRunner(t *testing.T, srv *sim.Server, sc sim.Scenario, opts asl.Options) *runner.Runner {
	t.Helper()
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: stackenv.Getenv(env), Log: slog.New(slog.DiscardHandler), Engine: opts})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func isolateEvent(t *testing.T) []byte {
	t.Helper()
	event, err := ec2isolation.Events.ReadFile("events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	return event
}
