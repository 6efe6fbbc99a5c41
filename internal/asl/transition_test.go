package asl_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// TransitionLatency (isolation bench's stated time per state transition) is waited once before each state is
// entered, inside Parallel branches too, through Options.Sleep; without it nothing waits.
func TestTransitionLatencyWaitsOncePerStateEntered(t *testing.T) {
	def := []byte(`{"StartAt":"A","States":{
		"A":{"Type":"Pass","Next":"P"},
		"P":{"Type":"Parallel","Next":"Done","Branches":[
			{"StartAt":"B1","States":{"B1":{"Type":"Pass","End":true}}},
			{"StartAt":"C1","States":{"C1":{"Type":"Pass","Next":"C2"},"C2":{"Type":"Pass","End":true}}}]},
		"Done":{"Type":"Succeed"}}}`)
	m, err := asl.Load(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		latency time.Duration
		want    []time.Duration
	}{
		{0, nil},
		// A, P, B1, C1, C2, Done: six states entered.
		{15 * time.Millisecond, []time.Duration{15 * time.Millisecond, 15 * time.Millisecond, 15 * time.Millisecond,
			15 * time.Millisecond, 15 * time.Millisecond, 15 * time.Millisecond}},
	} {
		var mu sync.Mutex
		var slept []time.Duration
		opts := asl.Options{TransitionLatency: tc.latency, Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			slept = append(slept, d)
			return nil
		}}
		e := m.Start(context.Background(), "t", []byte(`{}`), newInvoker(nil), opts)
		if e.Status != asl.StatusSucceeded {
			t.Fatalf("latency %v: status %s %s %s", tc.latency, e.Status, e.Error, e.Cause)
		}
		if diff := cmp.Diff(tc.want, slept); diff != "" {
			t.Errorf("latency %v: waits (-want +got):\n%s", tc.latency, diff)
		}
	}
}
