// Command apply-security-group is the "Apply isolation security group" Lambda (see internal/secgroup).
// Environment: CONNECTION_TRACKING (direct | untrack-first, as for ensure-security-group); LOG_LEVEL optional.
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
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.ApplyGroupsInput) (workflow.ApplyGroupsOutput, error), error) {
		mode, err := secgroup.ModeFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return secgroup.NewApply(ec2.NewFromConfig(cfg), mode, log).Handle, nil
	})
}
