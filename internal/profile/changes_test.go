package profile_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// change is a workflow.Change as a test compares it: the time only has to be set, the detail has to name the
// profiles.
type change struct{ Step, Resource, Action string }

func changesOf(t *testing.T, cs []workflow.Change, mention ...string) []change {
	t.Helper()
	out := []change{}
	for _, c := range cs {
		if c.At.IsZero() {
			t.Errorf("change %+v has no time", c)
		}
		for _, m := range mention {
			if !strings.Contains(c.Detail, m) {
				t.Errorf("change detail %q does not mention %s", c.Detail, m)
			}
		}
		out = append(out, change{c.Step, c.Resource, c.Action})
	}
	return out
}

// TestChanges: each step reports the change it made, for the incident record, and none when it made none.
func TestChanges(t *testing.T) {
	t.Run("disassociate then associate", func(t *testing.T) {
		e := start(t, scenario(sim.Instance{Profile: "web-server"}))
		dis, _ := retried(t, pending, func() (workflow.DisassociateOutput, error) { return e.disassociate.Handle(ctx, input) })
		want := []change{{"Disassociate profile", instanceID, "DisassociateIamInstanceProfile"}}
		if diff := cmp.Diff(want, changesOf(t, dis.Changes, webARN)); diff != "" {
			t.Errorf("disassociate changes (-want +got):\n%s", diff)
		}
		att, _ := retried(t, pending, func() (workflow.AttachOutput, error) { return e.attach.Handle(ctx, input) })
		want = []change{{"Attach isolation profile", instanceID, "AssociateIamInstanceProfile"}}
		if diff := cmp.Diff(want, changesOf(t, att.Changes, isolationARN, att.AssociationID)); diff != "" {
			t.Errorf("attach changes (-want +got):\n%s", diff)
		}

		dis2, err := e.disassociate.Handle(ctx, input)
		if err != nil || len(dis2.Changes) != 0 {
			t.Errorf("second disassociate = %+v, %v; want no change", dis2, err)
		}
		att2, err := e.attach.Handle(ctx, input)
		if err != nil || len(att2.Changes) != 0 {
			t.Errorf("second attach = %+v, %v; want no change", att2, err)
		}
	})
	t.Run("replace", func(t *testing.T) {
		e := start(t, scenario(sim.Instance{Profile: "web-server"}))
		att, err := e.attach.Handle(ctx, input)
		if err != nil {
			t.Fatal(err)
		}
		want := []change{{"Attach isolation profile", instanceID, "ReplaceIamInstanceProfileAssociation"}}
		if diff := cmp.Diff(want, changesOf(t, att.Changes, webARN, isolationARN)); diff != "" {
			t.Errorf("attach changes (-want +got):\n%s", diff)
		}
	})
	t.Run("nothing to disassociate", func(t *testing.T) {
		e := start(t, scenario(sim.Instance{}))
		dis, err := e.disassociate.Handle(ctx, input)
		if err != nil || len(dis.Changes) != 0 {
			t.Errorf("disassociate = %+v, %v; want no change", dis, err)
		}
	})
}
