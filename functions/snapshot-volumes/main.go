// Command snapshot-volumes is the "Snapshot volumes" Lambda (see internal/snapshot).
// Environment: LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.SnapshotVolumes) }
