// Command snapshot-volumes is the "Snapshot volumes" Lambda (see internal/snapshot).
// Environment: LOG_LEVEL optional.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func main() {
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.InstanceInput) (workflow.SnapshotOutput, error), error) {
		return snapshot.New(ec2.NewFromConfig(cfg), log).Handle, nil
	})
}
