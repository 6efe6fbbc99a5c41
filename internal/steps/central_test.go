package steps_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

// Issue 13, item 15: a central bucket without its region is a configuration error at start, not a failed copy
// at the first incident.
func TestCentralBucketNeedsItsRegion(t *testing.T) {
	env := map[string]string{"INCIDENT_BUCKET": "records", "CENTRAL_BUCKET": "org-records"}
	getenv := func(k string) string { return env[k] }
	_, err := steps.RecordIncident(aws.Config{Region: "us-east-1"}, getenv, slog.New(slog.DiscardHandler))
	var ce *steperr.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a ConfigError", err)
	}
	env["CENTRAL_BUCKET_REGION"] = "eu-west-1"
	if _, err := steps.RecordIncident(aws.Config{Region: "us-east-1"}, getenv, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("with its region: %v", err)
	}
}
