package profile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	instanceID   = "i-0123456789abcdef0"
	webARN       = "arn:aws:iam::123456789012:instance-profile/web-server"
	isolationARN = "arn:aws:iam::123456789012:instance-profile/security/ec2-isolation"
)

var (
	settings = profile.Settings{IsolationProfileName: "ec2-isolation"}
	input    = workflow.InstanceInput{InstanceID: instanceID, ExecutionName: "exec-1", Reason: "tag Isolate=true"}
)

// scenario: one instance, a web-server profile, and the isolation profile under an IAM path (its ARN is not
// instance-profile/<name>).
func scenario(inst sim.Instance) sim.Scenario {
	inst.ID = instanceID
	inst.SubnetID = "subnet-0aaa000000000001"
	return sim.Scenario{
		VPCs:    []sim.VPC{{ID: "vpc-0aaa0000000000001", CIDR: "10.0.0.0/16"}},
		Subnets: []sim.Subnet{{ID: "subnet-0aaa000000000001", VpcID: "vpc-0aaa0000000000001", CIDR: "10.0.1.0/24"}},
		InstanceProfiles: []sim.InstanceProfile{
			{Name: "web-server", Role: "web-server"},
			{Name: "ec2-isolation", ARN: isolationARN, Role: "ec2-isolation"},
		},
		Instances: []sim.Instance{inst},
		Behaviour: sim.Behaviour{AssociationSettle: 20 * time.Millisecond},
	}
}

type env struct {
	srv          *sim.Server
	client       *ec2.Client
	disassociate *profile.Disassociate
	attach       *profile.Attach
}

func start(t *testing.T, sc sim.Scenario) env {
	t.Helper()
	srv := simtest.Start(t, sc)
	// Each function signs with its own name, as each Lambda has its own role.
	return env{
		srv:          srv,
		client:       newClient(t, srv, "test"),
		disassociate: profile.NewDisassociate(newClient(t, srv, "disassociate-profile"), settings, nil),
		attach:       profile.NewAttach(newClient(t, srv, "attach-isolation-profile"), settings, nil),
	}
}

// mutating lists the actions of the mutating calls received since the last ResetCalls.
func (e env) mutating() []string { return simtest.Mutating(e.srv) }

// association is one association as a test compares it.
type association struct {
	ProfileARN, State string
}

// current reads the instance's associations back through the SDK, leaving out the finished disassociations.
func (e env) current(t *testing.T) []association {
	t.Helper()
	out, err := e.client.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{instanceID}}},
	})
	if err != nil {
		t.Fatalf("describe associations: %v", err)
	}
	got := []association{}
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			got = append(got, association{aws.ToString(a.IamInstanceProfile.Arn), string(a.State)})
		}
	}
	slices.SortFunc(got, func(a, b association) int { return strings.Compare(a.ProfileARN, b.ProfileARN) })
	return got
}

// settled waits until no association of the instance is changing state (bounded), then returns them.
func (e env) settled(t *testing.T) []association {
	t.Helper()
	for range 200 {
		got := e.current(t)
		if !slices.ContainsFunc(got, func(a association) bool { return a.State == "associating" || a.State == "disassociating" }) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("associations never settled")
	return nil
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// retried runs step the way the state machine's Retry does for the errors retry accepts: again, after a pause,
// a bounded number of times. It returns the result and the retried errors.
func retried[Out any](t *testing.T, retry func(error) bool, step func() (Out, error)) (Out, []error) {
	t.Helper()
	var seen []error
	for range 100 {
		out, err := step()
		if err == nil || !retry(err) {
			if err != nil {
				t.Fatalf("step failed after %d retries: %T %v", len(seen), err, err)
			}
			return out, seen
		}
		seen = append(seen, err)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("step still failing after 100 attempts: %v", seen[len(seen)-1])
	var zero Out
	return zero, seen
}

// newClient is an EC2 client of the real SDK reaching srv as caller.
func newClient(_ *testing.T, srv *sim.Server, caller string) *ec2.Client {
	return ec2.NewFromConfig(srv.AWSConfig(caller))
}
