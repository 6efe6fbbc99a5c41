package sim_test

// Resource policies with aws:PrincipalOrgID (issue 13, item 15), with the policies of
// organization/security-account.yaml: the organization's accounts publish and write their own records, an
// account outside it is refused, nobody deletes a version.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
)

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestCentralTopicAcceptsTheOrganizationOnly(t *testing.T) {
	srv, topic := simtest.SecurityAccount(t, "eu-west-1")
	ctx := context.Background()
	publish := func(key string) error {
		_, err := sns.NewFromConfig(srv.AWSConfig(key)).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m-" + key)})
		return err
	}
	if err := publish(simtest.MemberKey); err != nil {
		t.Fatalf("a member account's publish: %v", err)
	}
	if err := publish(simtest.OutsiderKey); errorCode(err) != "AuthorizationError" {
		t.Fatalf("an outsider's publish: err = %v, want AuthorizationError", err)
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.Caller+":"+m.Message)
	}
	if want := simtest.MemberKey + ":m-" + simtest.MemberKey; len(got) != 1 || got[0] != want {
		t.Errorf("the topic holds %q, want only %q", got, want)
	}
}

func TestCentralBucketTakesEachAccountsOwnRecords(t *testing.T) {
	srv, _ := simtest.SecurityAccount(t, "eu-west-1")
	ctx := context.Background()
	put := func(caller, account string) error {
		_, err := s3.NewFromConfig(srv.AWSConfig(caller)).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(simtest.CentralBucket), Key: aws.String("incidents/" + account + "/us-east-1/i-0aaaaaaaaaaaaaaa1.json"),
			Body: strings.NewReader(`{"from":"` + caller + `"}`)})
		return err
	}
	cases := []struct {
		name, caller, account, wantCode string
	}{
		{"member, its own prefix", simtest.MemberKey, simtest.MemberAccountID, ""},
		{"member, another account's prefix", simtest.MemberKey, "222222222222", "AccessDenied"},
		{"outsider, its own prefix", simtest.OutsiderKey, simtest.OutsideAccountID, "AccessDenied"},
		{"outsider, a member's prefix", simtest.OutsiderKey, simtest.MemberAccountID, "AccessDenied"},
		{"the security account itself", "AKIDSECURITY", simtest.SecurityAccountID, ""},
	}
	for _, c := range cases {
		if err := put(c.caller, c.account); errorCode(err) != c.wantCode || (c.wantCode == "" && err != nil) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantCode)
		}
	}
	key := "incidents/" + simtest.MemberAccountID + "/us-east-1/i-0aaaaaaaaaaaaaaa1.json"
	versionsOf := func() (v []sim.ObjectVersion) {
		srv.Update(func(a *sim.Account) { v = a.ObjectVersions(simtest.CentralBucket, key) })
		return v
	}
	versions := versionsOf()
	if len(versions) != 1 || !strings.Contains(string(versions[0].Body), simtest.MemberKey) {
		t.Fatalf("versions of %s: %+v, want the member's one write", key, versions)
	}
	// Write only: the member cannot read the records back, and nobody deletes a version (KeepEveryVersion).
	if _, err := s3.NewFromConfig(srv.AWSConfig(simtest.MemberKey)).GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(simtest.CentralBucket), Key: aws.String(key)}); errorCode(err) != "AccessDenied" {
		t.Errorf("a member's GetObject: err = %v, want AccessDenied", err)
	}
	for _, caller := range []string{simtest.MemberKey, "AKIDSECURITY"} {
		_, err := s3.NewFromConfig(srv.AWSConfig(caller)).DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(simtest.CentralBucket), Key: aws.String(key), VersionId: aws.String(versions[0].VersionID)})
		if errorCode(err) != "AccessDenied" {
			t.Errorf("%s deleting a version: err = %v, want AccessDenied", caller, err)
		}
	}
	if n := len(versionsOf()); n != 1 {
		t.Errorf("%d versions left, want 1", n)
	}
}

// A policy the simulator cannot evaluate is refused at load, never half-evaluated.
func TestResourcePolicyOutsideTheSimulatedSubsetIsRefused(t *testing.T) {
	for name, doc := range map[string]string{
		"condition key":  `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sns:Publish","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1"}}}]}`,
		"operator":       `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sns:Publish","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
		"NotPrincipal":   `{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"1"},"Action":"sns:Publish","Resource":"*"}]}`,
		"not JSON":       `{`,
		"missing Action": `{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}`,
	} {
		_, err := sim.Start(sim.Scenario{Topics: []sim.Topic{{Name: "t", Policy: sim.PolicyDocument(doc)}}})
		if err == nil || !strings.Contains(err.Error(), "policy") {
			t.Errorf("%s: Start err = %v, want a policy error", name, err)
		}
	}
}
