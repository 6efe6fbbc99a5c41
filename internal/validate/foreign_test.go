package validate_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// An event about another account's or partition's instance is refused even when it is consistent in itself and
// an instance of this account has the same id: isolating the local instance for it would be wrong.
func TestRefusesForeignInstanceWithALocalID(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *workflow.TagEvent)
		reason string
		calls  bool // the refusal needs EC2's answer (the instance's owner)
	}{
		{"foreign account in the event and the ARN", func(e *workflow.TagEvent) {
			e.Account = "210987654321"
			e.Resources = []string{"arn:aws:ec2:us-east-1:210987654321:instance/" + instanceID}
		}, "belongs to account 123456789012, not to the event's account 210987654321", true},
		{"another partition", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws-cn:ec2:us-east-1:123456789012:instance/" + instanceID}
		}, `partition "aws-cn", but this stack acts in "aws"`, false},
	}
	sc := network()
	sc.Instances = []sim.Instance{{ID: instanceID, SubnetID: "subnet-0aaa000000000001"}}
	srv, client := start(t, sc)
	h := validate.New(client, settings, slog.New(slog.DiscardHandler))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCalls()
			ev := tagEvent(instanceID)
			tt.change(&ev)
			_, err := h.Handle(context.Background(), workflow.ValidateInput{Event: ev, ExecutionName: "exec-1"})
			if !isA[*steperr.InvalidEvent](err) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error = %T %v, want *steperr.InvalidEvent saying %q", err, err, tt.reason)
			}
			if calls := srv.Calls(); (len(calls) > 0) != tt.calls {
				t.Errorf("%d AWS calls before refusing", len(calls))
			}
		})
	}
}
