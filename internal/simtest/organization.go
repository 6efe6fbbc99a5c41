package simtest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

// An AWS Organization for the central topic and bucket (issue 13, item 15): the security account, a member
// account of the organization and an account outside it. Their callers are told apart by access key id
// (sim.Server.AWSConfig(caller)).
const (
	OrganizationID    = "o-exampleorg01"
	SecurityAccountID = "999999999999"
	MemberAccountID   = "123456789012"
	OutsideAccountID  = "333333333333"
	// MemberKey and OutsiderKey are the access key ids of a member account's principal and an outsider's.
	MemberKey   = "AKIDMEMBER"
	OutsiderKey = "AKIDOUTSIDER"
	// CentralTopicName and CentralBucket are what the security account's stack created.
	CentralTopicName = "ec2-isolation-central"
	CentralBucket    = "org-ec2-isolation-records"
)

// SecurityAccount serves the security account of the organization in region, with the central topic and bucket
// of organization/security-account.yaml: their policies are the template's, rendered for this account.
func SecurityAccount(t testing.TB, region string) (srv *sim.Server, topicARN string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	tpl, err := template.Load(filepath.Join(filepath.Dir(file), "..", "..", "organization", "security-account.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topicARN = fmt.Sprintf("arn:aws:sns:%s:%s:%s", region, SecurityAccountID, CentralTopicName)
	values := map[string]string{
		"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": SecurityAccountID, "AWS::URLSuffix": "amazonaws.com",
		"OrganizationId": OrganizationID, "CentralTopic": topicARN, "CentralBucket": CentralBucket,
		"CentralBucket.Arn": "arn:aws:s3:::" + CentralBucket,
	}
	policy := func(id, prop string) sim.PolicyDocument {
		doc, err := template.Resolve(tpl.Resources[id].Properties[prop], values)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return sim.PolicyDocument(b)
	}
	srv = Start(t, sim.Scenario{
		Account: SecurityAccountID, Region: region, Organization: OrganizationID,
		Topics:  []sim.Topic{{Name: CentralTopicName, Policy: policy("CentralTopicPolicy", "PolicyDocument")}},
		Buckets: []sim.S3Bucket{{Name: CentralBucket, Versioning: true, Policy: policy("CentralBucketPolicy", "PolicyDocument")}},
		Callers: map[string]sim.Caller{
			MemberKey:   {Account: MemberAccountID, Organization: OrganizationID},
			OutsiderKey: {Account: OutsideAccountID, Organization: "o-otherorg0001"},
		},
	})
	return srv, topicARN
}
