package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// RevokeCredentials builds "Revoke credentials" (env REVOCABLE_ROLES, REVOKE_CREDENTIALS).
func RevokeCredentials(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.RevokeInput, workflow.RevokeOutput], error) {
	s, err := credentials.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return credentials.New(iam.NewFromConfig(cfg), s, log).Revoke, nil
}

// LiftCredentialRevocation builds "Lift credential revocation" (env REVOCABLE_ROLES).
func LiftCredentialRevocation(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.RevokeInput, workflow.RevokeOutput], error) {
	// REVOKE_CREDENTIALS does not apply: a policy put while it was on is lifted whatever it says now.
	s, err := credentials.SettingsFromEnv(func(k string) string {
		if k == credentials.EnvRevokeCredentials {
			return ""
		}
		return env(k)
	})
	if err != nil {
		return nil, err
	}
	return credentials.New(iam.NewFromConfig(cfg), s, log).Lift, nil
}
