// Command restore-security-groups is the "Restore security groups" Lambda (see internal/restore).
// Environment: LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.RestoreSecurityGroups) }
