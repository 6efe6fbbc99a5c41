package snapshot_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// CreateSnapshots has no client token: when EC2 creates the set but its answer is lost, a retry of the same call
// would create a second set. The step must fail Transient instead (the state machine retries it) and its next run
// must find the set by the execution tag: one snapshot per volume, whatever happened to the answers.
func TestLostCreateSnapshotsAnswerMakesNoSecondSet(t *testing.T) {
	tests := []struct {
		name    string
		fault   sim.ErrorFault
		attempt time.Duration // the client's per-attempt timeout
	}{
		{"answer not received before the client's timeout", sim.ErrorFault{Action: "CreateSnapshots", Timeout: time.Minute, Applied: true, FirstCalls: 1}, 100 * time.Millisecond},
		{"connection closed after the set was created", sim.ErrorFault{Action: "CreateSnapshots", Timeout: time.Millisecond, Applied: true, FirstCalls: 1}, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario(threeVolumes...)
			sc.Faults.Errors = []sim.ErrorFault{tt.fault}
			srv := simtest.Start(t, sc)
			cfg := srv.AWSConfig("snapshot-volumes")
			// The timeout applies to CreateSnapshots only (its answer is held a minute, or its connection closed):
			// the other calls keep the default, so a loaded machine cannot make them time out too.
			cfg.APIOptions = append(cfg.APIOptions, timeoutFor("CreateSnapshots", tt.attempt))
			h := snapshot.New(ec2.NewFromConfig(cfg), nil)

			_, err := h.Handle(ctx, input)
			var transient *steperr.Transient
			if !errors.As(err, &transient) {
				t.Fatalf("first run: error %T %v, want *steperr.Transient (the state machine retries it)", err, err)
			}
			out, err := h.Handle(ctx, input) // the state machine's retry
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if out.Created {
				t.Error("second run created a set: the first one was not found")
			}

			reader := newClient(t, srv, "test")
			all, err := reader.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
				{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{instanceID}}}})
			if err != nil {
				t.Fatal(err)
			}
			var vols []string
			for _, s := range all.Snapshots {
				vols = append(vols, aws.ToString(s.VolumeId))
			}
			slices.Sort(vols)
			want := []string{"vol-00000000000000001", "vol-00000000000000002", "vol-00000000000000003"}
			if diff := cmp.Diff(want, vols); diff != "" {
				t.Errorf("snapshots of the instance by volume (-want +got):\n%s", diff)
			}
			if n := len(srv.Calls()); n == 0 {
				t.Fatal("no calls recorded")
			}
			creates := 0
			for _, c := range srv.Calls() {
				if c.Action == "CreateSnapshots" {
					creates++
				}
			}
			if creates != 1 {
				t.Errorf("%d CreateSnapshots calls, want 1 (the one whose answer was lost)", creates)
			}
		})
	}
}

// DescribeInstances without an answer (after the SDK's retries) is an error without an AWS code: Transient, not
// a success with no result (it was a nil dereference).
func TestNoAnswerIsTransient(t *testing.T) {
	sc := scenario(threeVolumes...)
	sc.Faults.Errors = []sim.ErrorFault{{Action: "DescribeInstances", Timeout: time.Millisecond}}
	_, _, h := start(t, sc)
	_, err := h.Handle(ctx, input)
	var transient *steperr.Transient
	if !errors.As(err, &transient) {
		t.Errorf("error %T %v, want *steperr.Transient", err, err)
	}
}

// timeoutFor gives one operation's calls a deadline of their own (an SDK middleware).
func timeoutFor(operation string, d time.Duration) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("TestTimeoutFor",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) != operation {
					return next.HandleInitialize(ctx, in)
				}
				ctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}
