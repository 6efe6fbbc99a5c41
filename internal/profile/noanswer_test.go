package profile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// A call that never gets an answer (the connection closed, after the SDK's retries) is an error without an AWS
// code. It must come out as Transient, for the state machine to retry the step, not be taken for a success with
// no result (a nil dereference, which in the disassociation's goroutine crashes the function).
func TestNoAnswerIsTransient(t *testing.T) {
	tests := []struct {
		step, action string
		profile      string // the instance's profile at the start
	}{
		{"disassociate", "DescribeIamInstanceProfileAssociations", "web-server"},
		{"disassociate", "DisassociateIamInstanceProfile", "web-server"},
		{"attach", "ReplaceIamInstanceProfileAssociation", "web-server"},
		{"attach", "AssociateIamInstanceProfile", ""},
	}
	for _, tt := range tests {
		t.Run(tt.step+" "+tt.action, func(t *testing.T) {
			sc := scenario(sim.Instance{Profile: tt.profile})
			sc.Faults.Errors = []sim.ErrorFault{{Action: tt.action, Timeout: time.Millisecond}}
			e := start(t, sc)
			var err error
			if tt.step == "disassociate" {
				_, err = e.disassociate.Handle(context.Background(), input)
			} else {
				_, err = e.attach.Handle(context.Background(), input)
			}
			var transient *steperr.Transient
			if !errors.As(err, &transient) {
				t.Errorf("error %T %v, want *steperr.Transient", err, err)
			}
		})
	}
}
