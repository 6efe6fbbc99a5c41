package snapshot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The execution name is how a run finds the set an earlier run of its execution made (a tag filter). A name that
// a tag cannot hold whole would never find it (a second set each run), and the filter's wildcards would find
// another execution's set (no set of its own). Step Functions never gives such names: they are refused.
func TestExecutionNameThatCannotFindItsSetIsRefused(t *testing.T) {
	srv, _, h := start(t, scenario(threeVolumes...))
	if _, err := h.Handle(ctx, input); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"*", "exec-?", "exec-1*", strings.Repeat("ü", 81)} {
		srv.ResetCalls()
		_, err := h.Handle(ctx, workflow.InstanceInput{InstanceID: instanceID, ExecutionName: name})
		var invalid *steperr.InvalidInput
		if !errors.As(err, &invalid) {
			t.Errorf("name %.20q: error %T %v, want InvalidInput", name, err, err)
		}
		if n := len(srv.Calls()); n > 0 {
			t.Errorf("name %.20q: %d calls", name, n)
		}
	}
	// The longest name Step Functions gives still finds its own set on the second run.
	long := workflow.InstanceInput{InstanceID: instanceID, ExecutionName: strings.Repeat("x", 80)}
	first, err := h.Handle(ctx, long)
	if err != nil || !first.Created {
		t.Fatalf("first run: %v %+v", err, first)
	}
	second, err := h.Handle(ctx, long)
	if err != nil || second.Created || len(second.Snapshots) != 3 {
		t.Errorf("second run: %v %+v, want the first run's set", err, second)
	}
}
