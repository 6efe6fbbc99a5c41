// Package steps builds each Lambda function's handler from an AWS configuration and the function's environment.
// The Lambda main packages and the in-process runner (isolation simulate) both build handlers here, so both run
// the same wiring. (The list of functions is runner.Functions: a package-level list here would link every step
// into every Lambda binary.)
package steps

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Env reads a function's environment variable (os.Getenv in Lambda).
type Env func(string) string

// Handler is a step's typed handler, as lambda.Start takes it.
type Handler[In, Out any] func(context.Context, In) (Out, error)

// Build constructs a step's handler. A configuration error is a steperr.ConfigError.
type Build[In, Out any] func(cfg aws.Config, env Env, log *slog.Logger) (Handler[In, Out], error)

// ValidateAndRecord builds "Validate and record" (env TAG_KEY, TAG_VALUE, and ISOLATION_GROUP_NAME,
// CONNECTION_TRACKING: it looks the isolation groups up with the instance).
func ValidateAndRecord(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.ValidateInput, workflow.Record], error) {
	s, err := validate.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return validate.New(ec2.NewFromConfig(cfg), s, log).Handle, nil
}

// DisassociateProfile builds "Disassociate profile" (env ISOLATION_PROFILE_NAME).
func DisassociateProfile(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.InstanceInput, workflow.DisassociateOutput], error) {
	s, err := profile.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return profile.NewDisassociate(ec2.NewFromConfig(cfg), s, log).Handle, nil
}

// AttachIsolationProfile builds "Attach isolation profile" (env ISOLATION_PROFILE_NAME).
func AttachIsolationProfile(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.InstanceInput, workflow.AttachOutput], error) {
	s, err := profile.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return profile.NewAttach(ec2.NewFromConfig(cfg), s, log).Handle, nil
}

// EnsureSecurityGroup builds "Ensure isolation security group" (env ISOLATION_GROUP_NAME, CONNECTION_TRACKING).
func EnsureSecurityGroup(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.EnsureGroupsInput, workflow.EnsureGroupsOutput], error) {
	s, err := secgroup.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	return secgroup.NewEnsure(ec2.NewFromConfig(cfg), s, log).Handle, nil
}

// ApplySecurityGroup builds "Apply isolation security group" (env CONNECTION_TRACKING).
func ApplySecurityGroup(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.ApplyGroupsInput, workflow.ApplyGroupsOutput], error) {
	mode, err := secgroup.ModeFromEnv(env)
	if err != nil {
		return nil, err
	}
	return secgroup.NewApply(ec2.NewFromConfig(cfg), mode, log).Handle, nil
}

// SnapshotVolumes builds "Snapshot volumes".
func SnapshotVolumes(cfg aws.Config, _ Env, log *slog.Logger) (Handler[workflow.InstanceInput, workflow.SnapshotOutput], error) {
	return snapshot.New(ec2.NewFromConfig(cfg), log).Handle, nil
}

// Notify builds "Notify success" / "Notify failure" (env TOPIC_ARN, CENTRAL_TOPIC_ARN).
func Notify(cfg aws.Config, env Env, log *slog.Logger) (Handler[workflow.NotifyInput, workflow.NotifyOutput], error) {
	s, err := notify.SettingsFromEnv(env)
	if err != nil {
		return nil, err
	}
	h := notify.New(sns.NewFromConfig(cfg), s, log)
	if s.CentralTopicARN != "" {
		// The central topic's region, with this function's credentials.
		region := notify.Region(s.CentralTopicARN)
		h.WithCentral(sns.NewFromConfig(cfg, func(o *sns.Options) { o.Region = region }))
	}
	return h.Handle, nil
}
