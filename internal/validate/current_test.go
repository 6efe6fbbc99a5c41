package validate_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// TestCurrentTagDecides (issue 12, case 7): the event says Isolate=true, but the instance's tag now says
// otherwise (removed, or already changed to the release value): the event is superseded, refused with a named
// error and no call that changes anything.
func TestCurrentTagDecides(t *testing.T) {
	const id = "i-0123456789abcdef0"
	for _, tt := range []struct {
		name string
		tags map[string]string // the instance's tags now
		got  string
	}{
		{"tag removed", map[string]string{"Name": "web-1"}, ""},
		{"tag changed to the release value", map[string]string{"Isolate": "release"}, "release"},
		{"tag value of another case", map[string]string{"Isolate": "True"}, "True"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := network()
			sc.Instances = []sim.Instance{{ID: id, Tags: tt.tags, NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-00000000000000001", SubnetID: "subnet-0aaa000000000001", Groups: []string{"sg-0000000000000000a"}}}}}
			srv := simtest.Start(t, sc) // not start: it would tag the instance
			client := newClient(t, srv, caller)
			_, err := validate.New(client, settings, slog.New(slog.DiscardHandler)).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(id), ExecutionName: "exec-1"})
			var sup *steperr.Superseded
			if !errors.As(err, &sup) {
				t.Fatalf("error = %T %v, want *steperr.Superseded", err, err)
			}
			if sup.InstanceID != id || sup.TagKey != "Isolate" || sup.Want != "true" || sup.Got != tt.got {
				t.Errorf("Superseded = %+v, want instance %s, Isolate, want true, got %q", sup, id, tt.got)
			}
			if !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("message %q does not say nothing was changed", err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}

// TestRecordShowsIsolationArtifacts (issue 12, case 1): an observation that already shows an isolation artifact
// (an ENI on a managed group in any position, even under a derived name; the isolation profile associated) is
// marked, so that it is never kept as the pre-isolation state; a genuine one carries no mark and the time it
// was read.
func TestRecordShowsIsolationArtifacts(t *testing.T) {
	const id = "i-0123456789abcdef0"
	managed := map[string]string{"ec2-isolation:managed": "true", "ec2-isolation:role": "isolation"}
	iso := sim.SecurityGroup{ID: "sg-0000000000000001a", VpcID: "vpc-0aaa0000000000001", Name: groupName, Description: "isolation",
		Ingress: []sim.Rule{}, Egress: []sim.Rule{}, Tags: managed}
	derived := sim.SecurityGroup{ID: "sg-0000000000000002b", VpcID: "vpc-0bbb0000000000002", Name: groupName + "-vpc-0bbb0000000000002",
		Description: "isolation (derived name)", Ingress: []sim.Rule{}, Egress: []sim.Rule{}, Tags: managed}
	foreign := sim.SecurityGroup{ID: "sg-0000000000000003b", VpcID: "vpc-0bbb0000000000002", Name: groupName, Description: "not ours"}
	for _, tt := range []struct {
		name      string
		groupsA   []string
		groupsB   []string
		profile   string
		artifacts []string
	}{
		{"genuine", []string{"sg-0000000000000000a"}, []string{"sg-0000000000000000d"}, "web-server", nil},
		{"a foreign group with the isolation name is no artifact", []string{"sg-0000000000000000a"}, []string{foreign.ID}, "web-server", nil},
		{"isolation group alone", []string{iso.ID}, []string{"sg-0000000000000000d"}, "web-server",
			[]string{"eni-00000000000000001 carries the isolation group " + iso.ID}},
		{"isolation group beside the original", []string{"sg-0000000000000000a", iso.ID}, []string{"sg-0000000000000000d"}, "web-server",
			[]string{"eni-00000000000000001 carries the isolation group " + iso.ID}},
		{"managed group under a derived name", []string{"sg-0000000000000000a"}, []string{"sg-0000000000000000d", derived.ID}, "web-server",
			[]string{"eni-00000000000000002 carries the isolation group " + derived.ID}},
		{"isolation profile associated", []string{"sg-0000000000000000a"}, []string{"sg-0000000000000000d"}, "quarantine",
			[]string{"the isolation profile arn:aws:iam::123456789012:instance-profile/quarantine is associated (associated)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := network()
			sc.SecurityGroups = append(sc.SecurityGroups, iso, derived, foreign)
			sc.InstanceProfiles = append(sc.InstanceProfiles, sim.InstanceProfile{Name: "quarantine", Role: "quarantine"})
			sc.Instances = []sim.Instance{{ID: id, Profile: tt.profile, NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-00000000000000001", SubnetID: "subnet-0aaa000000000001", Groups: tt.groupsA},
				{ID: "eni-00000000000000002", SubnetID: "subnet-0bbb000000000001", DeviceIndex: 1, Groups: tt.groupsB},
			}}}
			srv, client := start(t, sc)
			s := settings
			s.ProfileName = "quarantine"
			before := time.Now().UTC()
			rec, err := validate.New(client, s, slog.New(slog.DiscardHandler)).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(id), ExecutionName: "exec-1"})
			after := time.Now().UTC()
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if !slices.Equal(rec.Artifacts, tt.artifacts) {
				t.Errorf("artifacts %q, want %q", rec.Artifacts, tt.artifacts)
			}
			if rec.Genuine() != (len(tt.artifacts) == 0) {
				t.Errorf("Genuine() = %v with artifacts %q", rec.Genuine(), rec.Artifacts)
			}
			if !slices.Equal(rec.ManagedGroups, []string{iso.ID, derived.ID}) {
				t.Errorf("managed groups %v, want %v", rec.ManagedGroups, []string{iso.ID, derived.ID})
			}
			if rec.RecordedAt.Before(before) || rec.RecordedAt.After(after) {
				t.Errorf("recordedAt %s is not the time of the read (between %s and %s)", rec.RecordedAt, before, after)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}
