// Command admission-starter is the storm's admission starter (see internal/admission): fed by the isolation
// queue, it starts isolation executions while fewer than ADMISSION_WINDOW run.
// Environment: ISOLATION_STATE_MACHINE_ARN, ADMISSION_WINDOW; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.AdmissionStarter) }
