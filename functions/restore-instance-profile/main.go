// Command restore-instance-profile is the "Restore instance profile" Lambda (see internal/restore).
// Environment: ISOLATION_PROFILE_NAME; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.RestoreInstanceProfile) }
