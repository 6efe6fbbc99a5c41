// Command record-incident is the "Record pre-isolation state", "Record outcome" and "Record release" Lambda (see internal/incident).
// Environment: INCIDENT_BUCKET; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.RecordIncident) }
