// Package simrun runs the reconciler against the simulator, with both state machines deployed there (the real
// definitions and handlers, internal/runner): what `isolation simulate --reconcile`, the reconciler's tests and
// `isolation status`'s tests share.
package simrun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// Caller is the access key id the reconciler's calls carry (sim.Call.Caller).
const Caller = "reconcile"

// Harness is a simulated account with the stack's two state machines and the reconciler.
type Harness struct {
	Srv      *sim.Server
	Env      map[string]string
	Handler  *reconcile.Handler
	Settings reconcile.Settings
	// Metrics holds the embedded metric format documents the passes wrote.
	Metrics *SyncBuffer
	// Executions are the runner's executions by name (both machines), for their history.
	mu         sync.Mutex
	executions map[string]*asl.Execution
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start serves sc with both state machines registered and builds the reconciler with the stack's default
// settings, then overrides (environment variables, e.g. RECONCILE_MAX_RUNNING). log may be nil.
func Start(sc sim.Scenario, overrides map[string]string, log *slog.Logger, opts ...sim.Option) (*Harness, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := sim.Start(sc, opts...)
	if err != nil {
		return nil, err
	}
	h := &Harness{Srv: srv, Metrics: &SyncBuffer{}, executions: map[string]*asl.Execution{}}
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
	env[reconcile.EnvIsolationMachineARN] = srv.StateMachineARN(runner.StateMachineName)
	env[reconcile.EnvReleaseMachineARN] = srv.StateMachineARN(runner.ReleaseStateMachineName)
	maps.Copy(env, overrides)
	h.Env = env
	for _, m := range []struct {
		def  []byte
		name string
	}{{ec2isolation.Definition, runner.StateMachineName}, {ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName}} {
		r, err := runner.New(runner.Config{Definition: m.def, StateMachineName: m.name, Region: srv.Region(),
			Account: srv.AccountID(), AWS: srv.AWSConfig, Env: stackenv.Getenv(env), Log: log})
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("state machine %s: %w", m.name, err)
		}
		srv.SetStateMachine(m.name, func(ctx context.Context, name string, input []byte) string {
			e := r.Start(ctx, name, input)
			h.mu.Lock()
			h.executions[name] = e
			h.mu.Unlock()
			return string(e.Status)
		})
	}
	s, err := reconcile.SettingsFromEnv(stackenv.Getenv(env))
	if err != nil {
		srv.Close()
		return nil, err
	}
	h.Settings = s
	cfg := srv.AWSConfig(Caller)
	h.Handler = reconcile.New(ec2.NewFromConfig(cfg), sfn.NewFromConfig(cfg), s3.NewFromConfig(cfg), s, log)
	h.Handler.Metrics = h.Metrics
	return h, nil
}

// Execution is the runner's execution of that name, once it ended.
func (h *Harness) Execution(name string) *asl.Execution {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.executions[name]
}

// Pass runs one reconciler pass at the scheduled time at (RFC 3339), then waits for every execution it started.
func (h *Harness) Pass(ctx context.Context, at string) (reconcile.Report, error) {
	rep, err := h.Handler.Handle(ctx, reconcile.Event{Time: at})
	h.Srv.WaitExecutions()
	return rep, err
}

// Close stops the simulator.
func (h *Harness) Close() { h.Srv.Close() }
