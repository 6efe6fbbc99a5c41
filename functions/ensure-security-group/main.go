// Command ensure-security-group is the "Ensure isolation security group" Lambda (see internal/secgroup).
// Environment: ISOLATION_GROUP_NAME, CONNECTION_TRACKING (direct | untrack-first); LOG_LEVEL optional.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func main() {
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.EnsureGroupsInput) (workflow.EnsureGroupsOutput, error), error) {
		s, err := secgroup.SettingsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return secgroup.NewEnsure(ec2.NewFromConfig(cfg), s, log).Handle, nil
	})
}
