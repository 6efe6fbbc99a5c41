// Package awscfg loads the AWS configuration every client of the product uses: the standard chain (profiles,
// environment, AWS_ENDPOINT_URL, the Lambda role) plus one retry policy.
package awscfg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Retry policy of the SDK clients. The state machine retries again, longer, on the steps' Throttled and
// Transient errors, so the SDK's share is short: a Lambda should not sleep through its timeout.
const (
	MaxAttempts = 6
	BaseDelay   = 100 * time.Millisecond
	MaxDelay    = 3 * time.Second
	// AttemptTimeout bounds one HTTP attempt (connection, request, answer). Without it a call whose answer never
	// comes (a connection lost mid-request) holds the function until its Lambda timeout, which fails the step; with
	// it the SDK retries the call like any transient error. The calls take well under a second; the functions'
	// timeouts are 30-60 s.
	AttemptTimeout = 20 * time.Second
)

// FullJitter is exponential backoff with full jitter: a delay drawn uniformly from [0, min(Max, Base·2^attempt)).
// Under a throttling storm it spreads the retries of many executions instead of synchronising them.
type FullJitter struct{ Base, Max time.Duration }

// BackoffDelay implements retry.BackoffDelayer.
func (b FullJitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	ceiling := b.Max
	if attempt < 30 {
		if d := b.Base << attempt; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0, nil
	}
	return rand.N(ceiling), nil
}

// Retryer returns the product's retry policy with the given backoff. The SDK's client-side retry quota is off:
// with hundreds of executions throttled at once it would fail calls that a retry would carry, and the attempts
// are bounded anyway.
func Retryer(backoff retry.BackoffDelayer) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxDelay
		o.Backoff = backoff
		o.RateLimiter = ratelimit.None
	})
}

// Load reads the standard AWS configuration with the product's retry policy and per-attempt timeout.
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts = append([]func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return Retryer(FullJitter{Base: BaseDelay, Max: MaxDelay}) }),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(AttemptTimeout)),
	}, opts...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}
