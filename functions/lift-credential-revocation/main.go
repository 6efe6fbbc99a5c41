// Command lift-credential-revocation is the "Lift credential revocation" Lambda (see internal/credentials).
// Environment: REVOCABLE_ROLES; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.LiftCredentialRevocation) }
