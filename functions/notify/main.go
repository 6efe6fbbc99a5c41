// Command notify is the "Notify success" / "Notify failure" Lambda (see internal/notify).
// Environment: TOPIC_ARN; LOG_LEVEL optional.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

func main() {
	lambdamain.Start(func(cfg aws.Config, log *slog.Logger) (func(context.Context, workflow.NotifyInput) (workflow.NotifyOutput, error), error) {
		s, err := notify.SettingsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		return notify.New(sns.NewFromConfig(cfg), s, log).Handle, nil
	})
}
