// Command validate-and-record is the "Validate and record" Lambda (see internal/validate).
// Environment: TAG_KEY, TAG_VALUE; LOG_LEVEL optional.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func main() {
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.ValidateInput) (workflow.Record, error), error) {
		s, err := validate.SettingsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return validate.New(ec2.NewFromConfig(cfg), s, log).Handle, nil
	})
}
