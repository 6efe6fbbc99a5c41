package restore_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/restore"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	webARN       = "arn:aws:iam::123456789012:instance-profile/app/web-server"
	isolationARN = "arn:aws:iam::123456789012:instance-profile/security/ec2-isolation"
	otherARN     = "arn:aws:iam::123456789012:instance-profile/other"
)

var profileSettings = profile.Settings{IsolationProfileName: "ec2-isolation"}

// profileScenario: the instance with the profile it has now ("" for none); the web-server profile (the
// pre-isolation one, under a path), the isolation profile, and another.
func profileScenario(now string) sim.Scenario {
	sc := isolatedScenario()
	sc.InstanceProfiles = []sim.InstanceProfile{
		{Name: "web-server", ARN: webARN, Role: "web-server"},
		{Name: "ec2-isolation", ARN: isolationARN, Role: "ec2-isolation"},
		{Name: "other", ARN: otherARN, Role: "other"},
	}
	sc.Instances[0].Profile = now
	sc.Behaviour.AssociationSettle = 10 * time.Millisecond
	return sc
}

// profileRecord is the record of an instance that had the profile arn ("" for none) before isolation.
func profileRecord(arn string) workflow.Record {
	rec := recorded()
	if arn != "" {
		rec.ProfileAssociation = &workflow.ProfileAssociation{AssociationID: "iip-assoc-0000000000000001", ProfileARN: arn, State: "associated"}
	}
	return rec
}

// settledProfiles waits (bounded) until no association of the instance changes state, then returns the
// profile ARNs of the instance's associated profiles.
func settledProfiles(t *testing.T, c *ec2.Client) []string {
	t.Helper()
	for range 200 {
		out, err := c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{instanceID}}},
		})
		if err != nil {
			t.Fatalf("describe associations: %v", err)
		}
		got, changing := []string{}, false
		for _, a := range out.IamInstanceProfileAssociations {
			switch a.State {
			case types.IamInstanceProfileAssociationStateAssociated:
				got = append(got, aws.ToString(a.IamInstanceProfile.Arn))
			case types.IamInstanceProfileAssociationStateAssociating, types.IamInstanceProfileAssociationStateDisassociating:
				changing = true
			}
		}
		if !changing {
			slices.Sort(got)
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("associations never settled")
	return nil
}

func TestRestoreProfile(t *testing.T) {
	tests := []struct {
		name       string
		now        string // profile name the instance has now
		state      string // its association's state, when not associated
		original   string // recorded profile ARN
		want       []string
		wantAction []string
	}{
		{name: "isolation profile replaced by the original", now: "ec2-isolation", original: webARN,
			want: []string{webARN}, wantAction: []string{"ReplaceIamInstanceProfileAssociation"}},
		{name: "isolation profile removed: the instance had none", now: "ec2-isolation",
			want: []string{}, wantAction: []string{"DisassociateIamInstanceProfile"}},
		{name: "no profile now: the original associated", original: webARN,
			want: []string{webARN}, wantAction: []string{"AssociateIamInstanceProfile"}},
		{name: "original already back", now: "web-server", original: webARN,
			want: []string{webARN}, wantAction: []string{}},
		{name: "original still associating (an earlier attempt)", now: "web-server", state: "associating", original: webARN,
			want: []string{webARN}, wantAction: []string{}},
		{name: "no profile before, none now", want: []string{}, wantAction: []string{}},
		{name: "isolation profile going away, none before", now: "ec2-isolation", state: "disassociating",
			want: []string{}, wantAction: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, profileScenario(tt.now))
			if tt.state != "" {
				var err error
				srv.Update(func(a *sim.Account) { err = a.SetAssociationState(instanceID, tt.state) })
				if err != nil {
					t.Fatal(err)
				}
			}
			h := restore.NewProfile(client(srv, "restore-instance-profile"), profileSettings, quiet)
			in := releaseInput(profileRecord(tt.original))

			out, err := h.Handle(ctx, in)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.wantAction, actions(out.Changes)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			checkChanges(t, restore.ProfileStep, out.Changes)
			if diff := cmp.Diff(tt.want, settledProfiles(t, client(srv, "test"))); diff != "" {
				t.Errorf("profiles after restore (-want +got):\n%s", diff)
			}
			if m := mutating(srv); len(m) != len(tt.wantAction) {
				t.Errorf("mutating calls %v, want %v", m, tt.wantAction)
			}

			srv.ResetCalls()
			again, err := h.Handle(ctx, in)
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

// TestRestoreProfileWaitsForDisassociation: the isolation profile still disassociating (someone removed it by
// hand) and an original to associate: EC2 would refuse the association (IncorrectState), so the step answers
// AssociationPending without calling, and associates once it settled.
func TestRestoreProfileWaitsForDisassociation(t *testing.T) {
	sc := profileScenario("ec2-isolation")
	sc.Behaviour.AssociationSettle = time.Hour
	srv := simtest.Start(t, sc)
	var err error
	srv.Update(func(a *sim.Account) { err = a.SetAssociationState(instanceID, "disassociating") })
	if err != nil {
		t.Fatal(err)
	}
	h := restore.NewProfile(client(srv, "restore-instance-profile"), profileSettings, quiet)
	in := releaseInput(profileRecord(webARN))
	for range 2 {
		if _, err := h.Handle(ctx, in); !isA[*steperr.AssociationPending](err) {
			t.Fatalf("error = %T %v, want *steperr.AssociationPending", err, err)
		}
	}
	if m := mutating(srv); len(m) > 0 {
		t.Errorf("mutating calls while pending: %v", m)
	}
	srv.Update(func(a *sim.Account) { a.Behaviour.AssociationSettle = 0 })
	out, err := h.Handle(ctx, in)
	if err != nil {
		t.Fatalf("after settling: %v", err)
	}
	if diff := cmp.Diff([]string{"AssociateIamInstanceProfile"}, actions(out.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{webARN}, settledProfiles(t, client(srv, "test"))); diff != "" {
		t.Errorf("profiles (-want +got):\n%s", diff)
	}
}

func TestRestoreProfileRefuses(t *testing.T) {
	tests := []struct {
		name     string
		now      string
		original string
		settings profile.Settings
		isErr    func(error) bool
		want     []string // substrings of the error
		profiles []string // associated profiles afterwards: unchanged
	}{
		{name: "a profile set by hand since isolation", now: "other", original: webARN, settings: profileSettings,
			isErr: isA[*steperr.AWSError], want: []string{otherARN, "by hand"}, profiles: []string{otherARN}},
		{name: "a profile set by hand, none before", now: "other", settings: profileSettings,
			isErr: isA[*steperr.AWSError], want: []string{otherARN}, profiles: []string{otherARN}},
		{name: "original profile deleted since isolation", now: "ec2-isolation",
			original: "arn:aws:iam::123456789012:instance-profile/deleted", settings: profileSettings,
			isErr: isA[*steperr.AWSError], want: []string{"instance-profile/deleted"}, profiles: []string{isolationARN}},
		{name: "no isolation profile name", now: "ec2-isolation", original: webARN,
			isErr: isA[*steperr.ConfigError], want: []string{profile.EnvIsolationProfileName}, profiles: []string{isolationARN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, profileScenario(tt.now))
			h := restore.NewProfile(client(srv, "restore-instance-profile"), tt.settings, quiet)
			_, err := h.Handle(ctx, releaseInput(profileRecord(tt.original)))
			if !tt.isErr(err) {
				t.Fatalf("error = %T %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if diff := cmp.Diff(tt.profiles, settledProfiles(t, client(srv, "test"))); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}
