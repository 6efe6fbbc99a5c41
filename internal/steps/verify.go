package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/verify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// VerifyContainment builds "Verify containment", the final read-back (env ISOLATION_GROUP_NAME,
// CONNECTION_TRACKING, ISOLATION_PROFILE_NAME, TAG_KEY, TAG_VALUE).
func VerifyContainment(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.VerifyInput, workflow.VerifyOutput], error) {
	s, err := verify.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return verify.New(ec2.NewFromConfig(cfg), s, log).Handle, nil
}
