// Command preserve-evidence is the "Preserve evidence" Lambda (see internal/evidence).
// Environment: ENABLE_TERMINATION_PROTECTION, STOP_ON_SHUTDOWN, KEEP_VOLUMES, DETACH_AUTO_SCALING, DEREGISTER_TARGETS (true | false, default true); LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.PreserveEvidence) }
