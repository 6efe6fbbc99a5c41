package validate_test

import (
	"context"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func faultScenario(faults ...sim.ErrorFault) sim.Scenario {
	sc := network()
	sc.Instances = []sim.Instance{{ID: instanceID, SubnetID: "subnet-0aaa000000000001", Profile: "web-server"}}
	sc.Faults.Errors = faults
	return sc
}

func TestThrottledFirstCallsStillRecord(t *testing.T) {
	srv, client := start(t, faultScenario(sim.ErrorFault{Action: "*", Code: "RequestLimitExceeded", FirstCalls: 1}))
	rec, err := validate.New(client, settings, nil).Handle(context.Background(),
		workflow.ValidateInput{Event: tagEvent(instanceID), ExecutionName: "exec-1"})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if rec.InstanceID != instanceID || len(rec.NetworkInterfaces) != 1 || rec.ProfileAssociation == nil {
		t.Errorf("incomplete record after retries: %+v", rec)
	}
	throttled := 0
	for _, c := range srv.Calls() {
		if c.ErrorCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	// DescribeInstances, DescribeIamInstanceProfileAssociations, DescribeInstanceAttribute (twice, but one
	// (caller, action) pair) and DescribeSecurityGroups were each refused once.
	if throttled != 4 {
		t.Errorf("%d throttled calls, want 4 (the fault did not apply as expected)", throttled)
	}
}

func TestAWSErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name  string
		fault sim.ErrorFault
		is    func(error) bool
		want  string
	}{
		{"throttled beyond the SDK's retries", sim.ErrorFault{Action: "DescribeInstances", Code: "RequestLimitExceeded"}, isA[*steperr.Throttled], "Throttled"},
		{"server error beyond the SDK's retries", sim.ErrorFault{Action: "DescribeIamInstanceProfileAssociations", Code: "InternalError", Status: 500}, isA[*steperr.Transient], "Transient"},
		{"attribute refused", sim.ErrorFault{Action: "DescribeInstanceAttribute", Code: "UnauthorizedOperation", Status: 403}, isA[*steperr.AWSError], "AWSError"},
		{"group lookup refused", sim.ErrorFault{Action: "DescribeSecurityGroups", Code: "UnauthorizedOperation", Status: 403}, isA[*steperr.AWSError], "AWSError"},
		{"group lookup throttled beyond the SDK's retries", sim.ErrorFault{Action: "DescribeSecurityGroups", Code: "RequestLimitExceeded"}, isA[*steperr.Throttled], "Throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, client := start(t, faultScenario(tt.fault))
			_, err := validate.New(client, settings, nil).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(instanceID), ExecutionName: "exec-1"})
			if !tt.is(err) {
				t.Fatalf("error = %T %v, want %s", err, err, tt.want)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}
