package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// The storm reports the most retries one Task made in one execution, with its state and the error it retried:
// the margin to the definition's budgets (a Task fails once a retrier's MaxAttempts is spent).
func TestSummaryNamesTheMostRetriedTask(t *testing.T) {
	m, err := asl.Load([]byte(`{"StartAt":"A","States":{
		"A":{"Type":"Task","Resource":"a","Retry":[{"ErrorEquals":["Throttled"],"MaxAttempts":5}],"Next":"B"},
		"B":{"Type":"Task","Resource":"b","Retry":[{"ErrorEquals":["Throttled","AssociationPending"],"MaxAttempts":5}],"End":true}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	fails := map[string][]string{"a": {"Throttled", "Throttled"}, "b": {"Throttled", "AssociationPending", "AssociationPending"}}
	calls := map[string]int{}
	inv := asl.InvokerFunc(func(_ context.Context, resource string, _ json.RawMessage) (json.RawMessage, error) {
		k := calls[resource]
		calls[resource]++
		if k < len(fails[resource]) {
			return nil, &asl.TaskError{Name: fails[resource][k], Cause: "test"}
		}
		return json.RawMessage(`{}`), nil
	})
	e := m.Start(context.Background(), "x", nil, inv, asl.Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s: %s %s", e.Status, e.Error, e.Cause)
	}
	s := summarise(e)
	if s.retries != 5 || s.mostRetries != 3 || s.mostRetriesAt != "B, AssociationPending" {
		t.Errorf("retries %d, most %d at %q; want 5, 3 at \"B, AssociationPending\"", s.retries, s.mostRetries, s.mostRetriesAt)
	}
}
