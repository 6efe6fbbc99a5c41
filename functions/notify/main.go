// Command notify is the "Notify success" / "Notify failure" Lambda (see internal/notify).
// Environment: TOPIC_ARN; LOG_LEVEL optional.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.Notify) }
