package restore_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

var ctx = context.Background()

// quiet is the steps' logger in tests.
var quiet = slog.New(slog.DiscardHandler)

const instanceID = "i-0123456789abcdef0"

// releaseInput is the input "Read incident record" gives the restore steps for a record.
func releaseInput(rec workflow.Record) workflow.ReleaseInput {
	rec.InstanceID = instanceID
	return workflow.ReleaseInput{
		InstanceID: instanceID, InstanceARN: "arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID,
		ExecutionName: "release-1",
		Incident: workflow.IncidentRef{Bucket: "incidents", Key: workflow.IncidentKey("123456789012", "us-east-1", instanceID),
			OpenedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), PreIsolation: workflow.PreIsolationState{Record: rec}},
	}
}

// client is an EC2 client of the real SDK signing as caller.
func client(srv *sim.Server, caller string) *ec2.Client {
	return ec2.NewFromConfig(srv.AWSConfig(caller))
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// actions lists the actions of changes.
func actions(cs []workflow.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Action)
	}
	return out
}

// resources lists the resources of changes, sorted.
func resources(cs []workflow.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Resource)
	}
	slices.Sort(out)
	return out
}

// checkChanges checks what every change must say: the step, a time, an action and a detail.
func checkChanges(t *testing.T, step string, cs []workflow.Change) {
	t.Helper()
	for _, c := range cs {
		if c.Step != step || c.At.IsZero() || c.Action == "" || c.Detail == "" || c.Resource == "" {
			t.Errorf("incomplete change %+v", c)
		}
	}
}

func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }
