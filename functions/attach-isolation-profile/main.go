// Command attach-isolation-profile is the "Attach isolation profile" Lambda (see internal/profile).
// Environment: ISOLATION_PROFILE_NAME; LOG_LEVEL optional.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func main() {
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.InstanceInput) (workflow.AttachOutput, error), error) {
		s, err := profile.SettingsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return profile.NewAttach(ec2.NewFromConfig(cfg), s, log).Handle, nil
	})
}
