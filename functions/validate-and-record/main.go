// Command validate-and-record is the "Validate and record" Lambda (see internal/validate).
// Environment: TAG_KEY, TAG_VALUE; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.ValidateAndRecord) }
