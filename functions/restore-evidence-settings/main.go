// Command restore-evidence-settings is the "Restore evidence settings" Lambda (see internal/evidence).
// Environment: LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.RestoreEvidenceSettings) }
