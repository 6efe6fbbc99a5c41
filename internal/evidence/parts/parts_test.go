package parts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence/parts"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// TestRunKeepsGoing: a failing part does not stop the others, and what each reported is kept, in part order.
func TestRunKeepsGoing(t *testing.T) {
	ps := []parts.Part{
		{Name: "a", Run: func(_ context.Context, r *parts.Result) error { r.Changed("res-a", "ActA", "done a"); return nil }},
		{Name: "b", Run: func(_ context.Context, r *parts.Result) error {
			r.Skip("b half done")
			return &steperr.AWSError{Op: "op b", Err: errors.New("refused")}
		}},
		{Name: "c", Run: func(_ context.Context, r *parts.Result) error { r.Changed("res-c", "ActC", "done c"); return nil }},
	}
	out, errs := parts.Run(context.Background(), "Step", ps)
	var got []string
	for _, c := range out.Changes {
		got = append(got, c.Step+"/"+c.Resource+"/"+c.Action)
	}
	if diff := cmp.Diff([]string{"Step/res-a/ActA", "Step/res-c/ActC"}, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b half done"}, out.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "b: ") {
		t.Errorf("errors = %v, want b's", errs)
	}
}

func TestError(t *testing.T) {
	aws := func(op string) error { return &steperr.AWSError{Op: op, Err: errors.New("AccessDenied")} }
	named := func(err error) error { return fmt.Errorf("part: %w", err) }
	tests := []struct {
		name     string
		errs     []error
		wantType string
		wantText []string
	}{
		{"none", nil, "<nil>", nil},
		{"one throttled among refusals", []error{named(aws("x")), named(&steperr.Throttled{Op: "y", Err: errors.New("slow")})},
			"*steperr.Throttled", []string{"2 of 3 parts failed", "x", "y"}},
		{"one transient among refusals", []error{named(aws("x")), named(&steperr.Transient{Op: "y", Err: errors.New("500")})},
			"*steperr.Transient", []string{"x", "y"}},
		{"two refusals", []error{named(aws("x")), named(aws("y"))}, "*steperr.AWSError", []string{"x", "y"}},
		{"every part: unknown instance", []error{named(&steperr.InstanceNotFound{InstanceID: "i-1"}), named(&steperr.InstanceNotFound{InstanceID: "i-1"})},
			"*steperr.InstanceNotFound", []string{"i-1"}},
		{"unknown instance and a refusal", []error{named(&steperr.InstanceNotFound{InstanceID: "i-1"}), named(aws("y"))},
			"*steperr.AWSError", []string{"i-1", "y"}},
		{"terminated mid-run and a refusal", []error{named(aws("x")), named(&steperr.InstanceNotIsolatable{InstanceID: "i-1", Reason: "terminated"})},
			"*steperr.InstanceNotIsolatable", []string{"i-1", "terminated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parts.Error("Step", 3, tt.errs)
			if got := fmt.Sprintf("%T", err); got != tt.wantType {
				t.Fatalf("type = %s (%v), want %s", got, err, tt.wantType)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}
