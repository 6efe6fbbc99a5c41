// Command disassociate-profile is the "Disassociate profile" Lambda (see internal/profile).
// Environment: ISOLATION_PROFILE_NAME (left alone on a re-run); LOG_LEVEL optional.
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
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.InstanceInput) (workflow.DisassociateOutput, error), error) {
		s, err := profile.SettingsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return profile.NewDisassociate(ec2.NewFromConfig(cfg), s, log).Handle, nil
	})
}
