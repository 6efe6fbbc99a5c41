// Command revoke-credentials is the "Revoke credentials" Lambda (see internal/credentials).
// Environment: REVOCABLE_ROLES, REVOKE_CREDENTIALS; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.RevokeCredentials) }
