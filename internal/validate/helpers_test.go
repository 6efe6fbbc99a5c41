package validate_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	account = "123456789012"
	region  = "us-east-1"
	caller  = "validate-and-record"
)

// start serves sc and returns an EC2 client of the real SDK that reaches it. Every instance that has no Isolate
// tag gets Isolate=true, as the responder's tag that sent the event (the current tag decides).
func start(t *testing.T, sc sim.Scenario) (*sim.Server, *ec2.Client) {
	t.Helper()
	sc.Instances = slices.Clone(sc.Instances)
	for i, in := range sc.Instances {
		if _, ok := in.Tags["Isolate"]; !ok {
			tags := maps.Clone(in.Tags)
			if tags == nil {
				tags = map[string]string{}
			}
			tags["Isolate"] = "true"
			sc.Instances[i].Tags = tags
		}
	}
	srv := simtest.Start(t, sc)
	return srv, newClient(t, srv, caller)
}

// mutating returns the mutating calls the server received.
func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }

// network is the shared part of the scenarios: two VPCs with a subnet each in the same AZ and a few groups.
func network() sim.Scenario {
	return sim.Scenario{
		Account: account,
		Region:  region,
		VPCs: []sim.VPC{
			{ID: "vpc-0aaa0000000000001", CIDR: "10.0.0.0/16"},
			{ID: "vpc-0bbb0000000000002", CIDR: "10.1.0.0/16"},
		},
		Subnets: []sim.Subnet{
			{ID: "subnet-0aaa000000000001", VpcID: "vpc-0aaa0000000000001", AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: "subnet-0aaa000000000002", VpcID: "vpc-0aaa0000000000001", AvailabilityZone: "us-east-1a", CIDR: "10.0.2.0/24"},
			{ID: "subnet-0bbb000000000001", VpcID: "vpc-0bbb0000000000002", AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: "sg-0000000000000000a", VpcID: "vpc-0aaa0000000000001", Name: "web", Description: "web"},
			{ID: "sg-0000000000000000b", VpcID: "vpc-0aaa0000000000001", Name: "ssh", Description: "ssh"},
			{ID: "sg-0000000000000000c", VpcID: "vpc-0aaa0000000000001", Name: "db", Description: "db"},
			{ID: "sg-0000000000000000d", VpcID: "vpc-0bbb0000000000002", Name: "mgmt", Description: "mgmt"},
		},
		InstanceProfiles: []sim.InstanceProfile{{Name: "web-server", Role: "web-server"}},
	}
}

// tagEvent is the event EventBridge sends when instance id is tagged Isolate=true.
func tagEvent(id string) workflow.TagEvent {
	return workflow.TagEvent{
		Version:    "0",
		ID:         "5f1ae1f4-7d7f-4a3b-9d0e-000000000001",
		DetailType: "Tag Change on Resource",
		Source:     "aws.tag",
		Account:    account,
		Time:       "2026-11-22T10:00:00Z",
		Region:     region,
		Resources:  []string{"arn:aws:ec2:" + region + ":" + account + ":instance/" + id},
		Detail: workflow.TagDetail{
			ChangedTagKeys: []string{"Isolate"},
			Service:        "ec2",
			ResourceType:   "instance",
			Version:        3,
			Tags:           map[string]string{"Isolate": "true", "Name": "web-1"},
		},
	}
}

// newClient is an EC2 client of the real SDK reaching srv as caller.
func newClient(_ *testing.T, srv *sim.Server, caller string) *ec2.Client {
	return ec2.NewFromConfig(srv.AWSConfig(caller))
}
