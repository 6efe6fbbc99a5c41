// Command reconcile is the reconciler Lambda (see internal/reconcile): run on a schedule.
package main

import (
	"github.com/ec2-isolation/ec2-isolation/internal/lambdamain"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
)

func main() { lambdamain.Start(steps.Reconcile) }
