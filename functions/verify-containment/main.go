// Command verify-containment is the "Verify containment" Lambda (see internal/verify).
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.VerifyContainment) }
