// Command disassociate-profile is the "Disassociate profile" Lambda (see internal/profile).
// Environment: ISOLATION_PROFILE_NAME (left alone on a re-run); LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.DisassociateProfile) }
