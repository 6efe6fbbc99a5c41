package steperr_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// FromAWS classifies what the real SDK returns after its retries, for each kind of answer the simulator gives.
func TestFromAWSClassifiesTheSDKsErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault sim.ErrorFault
		// attempt is the client's per-attempt timeout (0: the simulator's default).
		attempt time.Duration
		want    string
	}{
		{"throttled", sim.ErrorFault{Code: "RequestLimitExceeded"}, 0, "Throttled"},
		{"server error", sim.ErrorFault{Code: "InternalError"}, 0, "Transient"},
		{"unavailable", sim.ErrorFault{Code: "Unavailable"}, 0, "Transient"},
		{"no answer before the per-attempt timeout", sim.ErrorFault{Timeout: time.Minute}, 50 * time.Millisecond, "Transient"},
		{"connection closed without an answer", sim.ErrorFault{Timeout: time.Millisecond}, 0, "Transient"},
		{"refused", sim.ErrorFault{Code: "UnauthorizedOperation", Status: 403}, 0, "AWSError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, sim.Scenario{Faults: sim.Faults{Errors: []sim.ErrorFault{tt.fault}}})
			cfg := srv.AWSConfig("test")
			if tt.attempt > 0 {
				hc := *cfg.HTTPClient.(*http.Client)
				hc.Timeout = tt.attempt
				cfg.HTTPClient = &hc
			}
			_, err := ec2.NewFromConfig(cfg).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
			if err == nil {
				t.Fatal("DescribeVpcs succeeded despite the fault")
			}
			got := steperr.FromAWS("describe vpcs", err)
			var (
				throttled *steperr.Throttled
				transient *steperr.Transient
				awsErr    *steperr.AWSError
			)
			name := "unclassified"
			switch {
			case errors.As(got, &throttled):
				name = "Throttled"
			case errors.As(got, &transient):
				name = "Transient"
			case errors.As(got, &awsErr):
				name = "AWSError"
			}
			if name != tt.want {
				t.Errorf("FromAWS(%v) = %s (%T), want %s", err, name, got, tt.want)
			}
		})
	}
}
