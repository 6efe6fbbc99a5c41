// Command read-incident-record is the "Read incident record" Lambda (see internal/incident).
// Environment: INCIDENT_BUCKET, TAG_KEY, RELEASE_TAG_VALUE, ISOLATION_GROUP_NAME; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.ReadIncidentRecord) }
