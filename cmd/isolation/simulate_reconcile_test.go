package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// `isolation simulate --reconcile` shows one pass over the reconcile scenario: the two instances whose tag
// event never came are isolated by executions it started (the warm path: the groups it created before, so no
// "Ensure isolation security group"), the one with an execution running gets none, and the status after names
// that one as still open.
func TestSimulateReconcile(t *testing.T) {
	code, out, errOut := cli(t, "", "simulate", "--reconcile", "--running", "i-0c00000000000000c", "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	var res reconcileResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Pass.Started != 2 || res.Pass.Running != 1 || res.Pass.GroupsCreated != 3 || len(res.Executions) != 2 {
		t.Fatalf("pass %+v with %d executions, want 2 started, 1 running, 3 groups created", res.Pass, len(res.Executions))
	}
	for _, e := range res.Executions {
		if e.Status != asl.StatusSucceeded {
			t.Errorf("%s: %s", e.Name, e.Status)
		}
		for _, s := range e.States {
			if strings.HasSuffix(s.Name, "Ensure isolation security group") {
				t.Errorf("%s went through %q: the groups were not ready", e.Name, s.Name)
			}
		}
	}
	if len(res.Notifications) != 2 || !strings.Contains(res.Notifications[0].Email, "the tag event was not seen") {
		t.Errorf("notifications %+v, want 2 saying the tag event was not seen", res.Notifications)
	}
	var metrics map[string]any
	_ = json.Unmarshal(res.Metrics, &metrics)
	if res.After.NotInState != 1 || metrics["ExecutionsStarted"] != float64(2) {
		t.Errorf("after: %d not in state, metrics %s; want 1 (the running one), ExecutionsStarted 2", res.After.NotInState, res.Metrics)
	}
	// Human output.
	code, out, _ = cli(t, "", "simulate", "--reconcile")
	if code != 0 || !strings.Contains(out, "Reconciler pass") || !strings.Contains(out, "Started by: the reconciler") {
		t.Errorf("exit %d\n%s", code, out)
	}
}
