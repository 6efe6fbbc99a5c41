package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/prereq"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
)

// createPrereqsFlag is run's --create-prerequisites: isolate in an account without the stack.
const createPrereqsFlag = "create-prerequisites"

// checkPrereqFlags refuses --create-prerequisites with a name it would not create or a stack it would not read.
func checkPrereqFlags(f runFlags, stackSet bool) error {
	if !f.createPrereqs {
		return nil
	}
	switch {
	case stackSet:
		return fmt.Errorf("--%s and --stack: the mode works without a stack; drop one", createPrereqsFlag)
	case f.names.ProfileName != "" || f.names.TopicARN != "" || f.names.IncidentBucket != "":
		return fmt.Errorf("--%s names what it creates itself: drop --profile-name, --topic-arn and --incident-bucket (or drop --%s to use existing ones)", createPrereqsFlag, createPrereqsFlag)
	}
	return nil
}

// prereqNames fills the settings not passed as flags with the no-stack mode's names and the defaults, so that
// no stack is read.
func prereqNames(n preflight.Names, account, region string) (preflight.Names, prereq.Names) {
	p := prereq.For(account, region)
	if n.GroupName != "" {
		p.Group = n.GroupName
	}
	n.GroupName, n.ProfileName, n.TopicARN, n.IncidentBucket = p.Group, p.Profile, p.TopicARN, p.Bucket
	if n.TagKey == "" {
		n.TagKey = preflight.DefaultTagKey
	}
	if n.TagValue == "" {
		n.TagValue = preflight.DefaultTagValue
	}
	if n.Tracking == "" {
		n.Tracking = secgroup.ModeDirect
	}
	return n, p
}

func prereqClients(acc account) prereq.Clients {
	return prereq.Clients{IAM: iam.NewFromConfig(acc.cfg), SNS: sns.NewFromConfig(acc.cfg), S3: s3.NewFromConfig(acc.cfg)}
}

// printPrereqs is the plan's section of what will be created before the isolation.
func printPrereqs(w io.Writer, steps []prereq.Step) {
	if len(steps) == 0 {
		fmt.Fprintf(w, "\n  prerequisites (--%s): all exist, nothing to create\n", createPrereqsFlag)
		return
	}
	fmt.Fprintf(w, "\n  prerequisites (--%s), created first:\n", createPrereqsFlag)
	for _, s := range steps {
		fmt.Fprintf(w, "    %s\n", s)
	}
}

// planPrereqs is nil, nil unless the mode is on.
func planPrereqs(ctx context.Context, f runFlags, acc account) ([]prereq.Step, error) {
	if !f.createPrereqs {
		return nil, nil
	}
	return prereq.Plan(ctx, prereqClients(acc), acc.prereq)
}

// noStackNames are the names of the no-stack mode when there is no stack (noStack is Resolve's error): the
// resources `run --create-prerequisites` created, derived from the account and region as it derived them, so that
// release, record and status need no names by hand. Names passed as flags are kept. The mode is recognised by its
// incident bucket (one s3:HeadBucket): without it, the error says there is neither a stack nor the mode's bucket.
func noStackNames(ctx context.Context, acc account, flags preflight.Names, noStack error) (preflight.Names, string, error) {
	n, p := prereqNames(flags, acc.id.Account, acc.cfg.Region)
	if flags.ProfileName != "" {
		n.ProfileName = flags.ProfileName
	}
	if flags.TopicARN != "" {
		n.TopicARN = flags.TopicARN
	}
	if flags.IncidentBucket != "" {
		n.IncidentBucket = flags.IncidentBucket
	}
	if _, err := s3.NewFromConfig(acc.cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.IncidentBucket)}); err != nil {
		why := err.Error()
		var ae smithy.APIError
		if errors.As(err, &ae) {
			why = ae.ErrorCode()
		}
		return flags, "", fmt.Errorf("%w; nor is there the incident bucket %s that `isolation run --%s` creates (s3:HeadBucket: %s)",
			noStack, n.IncidentBucket, createPrereqsFlag, why)
	}
	return n, fmt.Sprintf("no stack: the names of --%s (%s, %s, %s, %s)", createPrereqsFlag, p.Group, n.ProfileName, n.TopicARN, n.IncidentBucket), nil
}
