package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

// The scenario's three instances whose tag events were lost (no execution is added for instRunning here).
var lostEvents = []string{instTaggedEarly, instLost, instRunning}

// beforeStart runs fn once, just before the first StartExecution request leaves the client: between the pass's
// listing of the running executions and its first start, the window in which an overlapping pass does harm.
type beforeStart struct {
	inner aws.HTTPClient
	once  sync.Once
	fn    func()
}

func (b *beforeStart) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "AWSStepFunctions.StartExecution" {
		b.once.Do(b.fn)
	}
	return b.inner.Do(r)
}

// executionsFor counts each instance's executions of the isolation machine, from the simulator's Step Functions.
func executionsFor(h *simrun.Harness) map[string][]string {
	out := map[string][]string{}
	for _, e := range h.Srv.Executions() {
		if !strings.Contains(e.ARN, ":"+runner.StateMachineName+":") {
			continue
		}
		for _, id := range lostEvents {
			if strings.Contains(e.Input, "instance/"+id) {
				out[id] = append(out[id], e.Name)
			}
		}
	}
	return out
}

// Two passes overlap (the 10:00 pass outlasts the schedule and the 10:01 one starts): the second runs whole while
// the first sits between its listing of the running executions and its first start, the worst moment. Without a
// guard both see no execution for the three instances whose events were lost and each starts one (six executions,
// under two pass names). With the lease the second pass starts nothing and says who holds the lease; each
// instance has exactly one execution and ends contained.
func TestOverlappingPassesStartEachExecutionOnce(t *testing.T) {
	h := start(t, scenario(t), nil)
	ctx := context.Background()
	var (
		second    reconcile.Report
		secondErr error
	)
	cfg := h.Srv.AWSConfig(simrun.Caller)
	sfnCfg := cfg.Copy()
	sfnCfg.HTTPClient = &beforeStart{inner: cfg.HTTPClient, fn: func() {
		second, secondErr = h.Handler.Handle(ctx, reconcile.Event{Time: "2026-12-05T10:01:00Z"})
	}}
	first := reconcile.New(ec2.NewFromConfig(cfg), sfn.NewFromConfig(sfnCfg), s3.NewFromConfig(cfg), h.Settings, nil)
	rep, err := first.Handle(ctx, reconcile.Event{Time: "2026-12-05T10:00:00Z"})
	h.Srv.WaitExecutions()
	if err != nil || secondErr != nil {
		t.Fatalf("first pass: %v; second pass: %v", err, secondErr)
	}
	for _, id := range lostEvents {
		if got := executionsFor(h)[id]; len(got) != 1 {
			t.Errorf("%s: executions %v, want exactly one", id, got)
		}
		if ok, open := contained(t, h, id); !ok {
			t.Errorf("%s not contained: %s", id, open)
		}
	}
	if rep.Started != 3 || second.Started != 0 || second.LeaseHeldBy != "20261205T1000Z" {
		t.Errorf("first pass started %d, second %d (lease held by %q); want 3, 0 and the 10:00 pass", rep.Started, second.Started, second.LeaseHeldBy)
	}
	for _, i := range second.Instances {
		if slices.Contains(lostEvents, i.ID) && !strings.Contains(i.Action, "deferred: pass 20261205T1000Z holds the reconciler's lease") {
			t.Errorf("second pass, %s: action %q, want deferred to the lease's holder", i.ID, i.Action)
		}
	}
}

// A pass that died holding the lease (a timeout) blocks starts until the lease expires, not for ever: an expired
// lease is taken over, and the pass starts what is needed. A released lease (Expires = its release) is taken too.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	h := start(t, scenario(t), nil)
	ctx := context.Background()
	c := s3.NewFromConfig(h.Srv.AWSConfig("hand"))
	put := func(expires time.Time) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"holder": "20261205T0955Z", "expires": expires})
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.Settings.Bucket), Key: aws.String(reconcile.LeaseKey),
			Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	put(time.Now().Add(time.Hour))
	rep, err := h.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil || rep.Started != 0 || rep.LeaseHeldBy != "20261205T0955Z" || rep.Deferred != 3 {
		t.Fatalf("a held lease: %+v %v; want nothing started, 3 deferred to 20261205T0955Z", rep, err)
	}
	put(time.Now().Add(-time.Second))
	rep, err = h.Pass(ctx, "2026-12-05T10:05:00Z")
	if err != nil || rep.Started != 3 || rep.LeaseHeldBy != "" {
		t.Fatalf("an expired lease: %+v %v; want 3 started", rep, err)
	}
	for _, id := range lostEvents {
		if ok, open := contained(t, h, id); !ok {
			t.Errorf("%s not contained: %s", id, open)
		}
	}
}

// The same, with the two passes really at once (two goroutines, whatever the interleaving): two schedules a
// minute apart, or one schedule delivered twice. Each instance whose event was lost gets exactly one execution.
func TestConcurrentPassesStartEachExecutionOnce(t *testing.T) {
	for _, pair := range [][2]string{{"2026-12-05T10:00:00Z", "2026-12-05T10:01:00Z"}, {"2026-12-05T10:00:00Z", "2026-12-05T10:00:00Z"}} {
		for round := range 3 {
			h := start(t, scenario(t), nil)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, at := range pair {
				wg.Go(func() { _, errs[i] = h.Handler.Handle(ctx, reconcile.Event{Time: at}) })
			}
			wg.Wait()
			h.Srv.WaitExecutions()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("%v round %d: %v", pair, round, errs)
			}
			for _, id := range lostEvents {
				if got := executionsFor(h)[id]; len(got) != 1 {
					t.Errorf("%v round %d, %s: executions %v, want exactly one", pair, round, id, got)
				}
			}
		}
	}
}
