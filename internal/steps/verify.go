package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/verify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// VerifyContainment builds "Verify containment", the final read-back.
func VerifyContainment(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.VerifyInput, workflow.VerifyOutput], error) {
	return verify.New(ec2.NewFromConfig(cfg), log).Handle, nil
}
