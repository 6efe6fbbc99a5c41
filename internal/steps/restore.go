package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/restore"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// RestoreSecurityGroups builds "Restore security groups".
func RestoreSecurityGroups(cfg aws.Config, _ Env, log *slog.Logger) (Handler[workflow.ReleaseInput, workflow.StepChanges], error) {
	return restore.NewGroups(ec2.NewFromConfig(cfg), log).Handle, nil
}

// RestoreInstanceProfile builds "Restore instance profile" (env ISOLATION_PROFILE_NAME).
func RestoreInstanceProfile(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.ReleaseInput, workflow.StepChanges], error) {
	s, err := profile.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return restore.NewProfile(ec2.NewFromConfig(cfg), s, log).Handle, nil
}
