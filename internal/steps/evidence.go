package steps

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// PreserveEvidence builds "Preserve evidence" (env ENABLE_TERMINATION_PROTECTION, STOP_ON_SHUTDOWN, KEEP_VOLUMES,
// DETACH_AUTO_SCALING, DEREGISTER_TARGETS: true (default) or false; INCIDENT_BUCKET, when set: a settings job reads
// the incident record first, and changes nothing once the incident is released).
func PreserveEvidence(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.EvidenceInput, workflow.StepChanges], error) {
	s, err := evidence.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	p := evidence.NewPreserve(ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg), elbv2.NewFromConfig(cfg), s, log)
	if bucket := env(incident.EnvBucket); bucket != "" {
		p.WithIncidents(newS3(cfg), bucket)
	}
	return p.Handle, nil
}

// RestoreEvidenceSettings builds "Restore evidence settings".
func RestoreEvidenceSettings(cfg aws.Config, _ Env, log *slog.Logger) (Handler[workflow.ReleaseInput, workflow.StepChanges], error) {
	return evidence.NewRestore(ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg), elbv2.NewFromConfig(cfg), log).Handle, nil
}
