// Command admission-starter is the storm's admission starter (see internal/admission): fed by the admission
// queue, it starts isolation executions while fewer than ADMISSION_WINDOW run; fed by the evidence queue, it
// starts the stage-2 evidence jobs while fewer than EVIDENCE_WINDOW evidence executions run.
// Environment: ISOLATION_STATE_MACHINE_ARN, ADMISSION_WINDOW, EVIDENCE_STATE_MACHINE_ARN, EVIDENCE_WINDOW;
// LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.AdmissionStarter) }
