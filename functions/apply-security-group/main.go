// Command apply-security-group is the "Apply isolation security group" Lambda (see internal/secgroup).
// Environment: CONNECTION_TRACKING (direct | untrack-first); LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.ApplySecurityGroup) }
