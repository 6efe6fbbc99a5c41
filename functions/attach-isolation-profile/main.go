// Command attach-isolation-profile is the "Attach isolation profile" Lambda (see internal/profile).
// Environment: ISOLATION_PROFILE_NAME; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.AttachIsolationProfile) }
