package incident_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	account    = "123456789012"
	region     = "us-east-1"
	bucket     = "incidents-bucket"
	instanceID = "i-0123456789abcdef0"
	arn        = "arn:aws:ec2:" + region + ":" + account + ":instance/" + instanceID
	vpcA       = "vpc-0aaa0000000000001"
	vpcB       = "vpc-0bbb0000000000002"
	isoA       = "sg-0000000000000001a" // the stack's isolation group in vpcA (managed tag)
	groupName  = "ec2-isolation"
)

var (
	ctx = context.Background()
	key = workflow.IncidentKey(account, region, instanceID)
)

// network: two VPCs in one AZ, ordinary groups, the stack's isolation group in vpcA, an unmanaged group that
// has the isolation group's name in vpcB, and the versioned incident bucket.
func network() sim.Scenario {
	return sim.Scenario{
		Account: account, Region: region,
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: "subnet-0aaa000000000001", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: "subnet-0bbb000000000001", VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: "sg-0000000000000000a", VpcID: vpcA, Name: "web", Description: "web"},
			{ID: "sg-0000000000000000b", VpcID: vpcA, Name: "ssh", Description: "ssh"},
			{ID: "sg-0000000000000000d", VpcID: vpcB, Name: "mgmt", Description: "mgmt"},
			{ID: isoA, VpcID: vpcA, Name: groupName, Description: "isolation", Ingress: []sim.Rule{}, Egress: []sim.Rule{},
				Tags: map[string]string{"ec2-isolation:managed": "true", "ec2-isolation:role": "isolation"}},
			{ID: "sg-0000000000000002b", VpcID: vpcB, Name: groupName, Description: "someone else's"},
		},
		InstanceProfiles: []sim.InstanceProfile{{Name: "web", Role: "web-role"}},
		Buckets:          []sim.S3Bucket{{Name: bucket, Versioning: true}},
	}
}

// withInstance adds the instance with two ENIs (one per VPC) carrying groups, tagged Isolate=release (the
// responder's release tag: the current tag decides).
func withInstance(sc sim.Scenario, groupsA, groupsB []string) sim.Scenario {
	sc.Instances = append(sc.Instances, sim.Instance{
		ID: instanceID, SubnetID: "subnet-0aaa000000000001", Profile: "web", Tags: map[string]string{"Isolate": "release"},
		NetworkInterfaces: []sim.NetworkInterface{
			{ID: "eni-0aaa0000000000001", SubnetID: "subnet-0aaa000000000001", DeviceIndex: 0, Groups: groupsA},
			{ID: "eni-0bbb0000000000001", SubnetID: "subnet-0bbb000000000001", DeviceIndex: 1, Groups: groupsB},
		},
		Volumes: []sim.Volume{{ID: "vol-00000000000000001", DeviceName: "/dev/xvda", DeleteOnTermination: true}},
	})
	return sc
}

// releaseEvent is the event EventBridge sends when the instance is tagged Isolate=release.
func releaseEvent(id string) workflow.TagEvent {
	return workflow.TagEvent{
		Version: "0", ID: "5f1ae1f4-7d7f-4a3b-9d0e-000000000002", DetailType: "Tag Change on Resource",
		Source: "aws.tag", Account: account, Time: "2026-11-23T10:00:00Z", Region: region,
		Resources: []string{"arn:aws:ec2:" + region + ":" + account + ":instance/" + id},
		Detail: workflow.TagDetail{
			ChangedTagKeys: []string{"Isolate"}, Service: "ec2", ResourceType: "instance", Version: 4,
			Tags: map[string]string{"Isolate": "release"},
		},
	}
}

// preRecord is Validate's record of the instance before isolation.
func preRecord() workflow.Record {
	return workflow.Record{
		InstanceID: instanceID, InstanceARN: arn, Account: account, Region: region, AvailabilityZone: "us-east-1a",
		State: "running", VpcIDs: []string{vpcA, vpcB},
		NetworkInterfaces: []workflow.NetworkInterface{
			{ID: "eni-0aaa0000000000001", VpcID: vpcA, SubnetID: "subnet-0aaa000000000001", DeviceIndex: 0, Groups: []string{"sg-0000000000000000a", "sg-0000000000000000b"}},
			{ID: "eni-0bbb0000000000001", VpcID: vpcB, SubnetID: "subnet-0bbb000000000001", DeviceIndex: 1, Groups: []string{"sg-0000000000000000d"}},
		},
		ProfileAssociation: &workflow.ProfileAssociation{AssociationID: "iip-assoc-0000000000000001", ProfileARN: "arn:aws:iam::123456789012:instance-profile/web", State: "associated"},
		ShutdownBehavior:   "stop",
		Volumes:            []workflow.Volume{{VolumeID: "vol-00000000000000001", DeviceName: "/dev/xvda", DeleteOnTermination: true}},
		Reason:             "tag Isolate=true",
		IsolationGroups:    []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA}},
	}
}

func s3Client(srv *sim.Server, caller string) *s3.Client {
	return s3.NewFromConfig(srv.AWSConfig(caller))
}

// putRecord writes f as the incident record (setup), returning its version.
func putRecord(t *testing.T, srv *sim.Server, body []byte) string {
	t.Helper()
	out, err := s3Client(srv, "setup").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put the record: %v", err)
	}
	return aws.ToString(out.VersionId)
}

func putFile(t *testing.T, srv *sim.Server, f workflow.IncidentFile) string {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return putRecord(t, srv, b)
}

// readRecord reads the record back through the SDK, with its version id.
func readRecord(t *testing.T, srv *sim.Server) (workflow.IncidentFile, string) {
	t.Helper()
	out, err := s3Client(srv, "test").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get the record: %v", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	var f workflow.IncidentFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("record is not an IncidentFile: %v\n%s", err, b)
	}
	return f, aws.ToString(out.VersionId)
}

// versions counts the record's versions (every write keeps the earlier ones).
func versions(t *testing.T, srv *sim.Server) int {
	t.Helper()
	out, err := s3Client(srv, "test").ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	return len(out.Versions)
}

func start(t *testing.T, sc sim.Scenario) *sim.Server {
	t.Helper()
	return simtest.Start(t, sc)
}

func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }
