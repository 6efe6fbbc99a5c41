// Package simtest is what the step packages' tests share: a simulator that lives as long as the test, and the
// calls it recorded.
package simtest

import (
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// Start serves sc until the test ends.
func Start(t testing.TB, sc sim.Scenario) *sim.Server {
	t.Helper()
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// Mutating lists the actions of the mutating calls srv received since its last ResetCalls (DryRun calls are not
// mutating).
func Mutating(srv *sim.Server) []string {
	var out []string
	for _, c := range srv.Calls() {
		if c.Mutating {
			out = append(out, c.Action)
		}
	}
	return out
}
