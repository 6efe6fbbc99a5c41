// Package simtest is what the step packages' tests share: a simulator that lives as long as the test, and the
// calls it recorded.
package simtest

import (
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// Start serves sc until the test ends.
func Start(t testing.TB, sc sim.Scenario, opts ...sim.Option) *sim.Server {
	t.Helper()
	srv, err := sim.Start(sc, opts...)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// Mutating lists the actions of the mutating calls srv received since its last ResetCalls, of every service
// (DryRun calls are not mutating).
func Mutating(srv *sim.Server) []string {
	var out []string
	for _, c := range srv.Calls() {
		if c.Mutating {
			out = append(out, c.Action)
		}
	}
	return out
}

// MutatingByService lists the mutating calls as "service:Action" (service is the SigV4 signing name: ec2, sns,
// s3, iam, autoscaling, elasticloadbalancing).
func MutatingByService(srv *sim.Server) []string {
	var out []string
	for _, c := range srv.Calls() {
		if c.Mutating {
			out = append(out, c.Service+":"+c.Action)
		}
	}
	return out
}

// Calls returns the calls srv received for one service (its SigV4 signing name), in arrival order.
func Calls(srv *sim.Server, service string) []sim.Call {
	var out []sim.Call
	for _, c := range srv.Calls() {
		if c.Service == service {
			out = append(out, c)
		}
	}
	return out
}

// Actions lists the actions of the calls srv received for one service, in arrival order.
func Actions(srv *sim.Server, service string) []string {
	var out []string
	for _, c := range Calls(srv, service) {
		out = append(out, c.Action)
	}
	return out
}
