package awscfg_test

import (
	"context"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
)

// Every client of the product bounds each attempt (a hung call is retried, not waited for until the Lambda
// timeout) and retries with the product's policy. That the SDK retries an attempt that timed out is shown
// against the simulator in internal/sim (TestTimeoutFaultIsRetriedBySDK) and end to end by the fault soak.
func TestLoadBoundsEachAttempt(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	cfg, err := awscfg.Load(context.Background(), config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	hc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client %T, want the SDK's buildable client", cfg.HTTPClient)
	}
	if got := hc.GetTimeout(); got != awscfg.AttemptTimeout || got <= 0 {
		t.Errorf("per-attempt timeout %v, want %v", got, awscfg.AttemptTimeout)
	}
	if got := cfg.Retryer().MaxAttempts(); got != awscfg.MaxAttempts {
		t.Errorf("retryer max attempts %d, want %d", got, awscfg.MaxAttempts)
	}
}
