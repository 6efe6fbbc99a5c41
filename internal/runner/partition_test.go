package runner_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// arnPartition finds the partition of every ARN in a text (JSON, escaped or not, a policy, a message).
var arnPartition = regexp.MustCompile(`arn:([a-z0-9-]*):[a-z0-9-]+:`)

// Issue 13 item 2: in AWS GovCloud (US) and the China regions every ARN the product writes (the revoking and
// released policies, the incident record, the notifications) is of that partition; an ARN with arn:aws: there
// matches nothing, so a deny on it would revoke nothing. The instance's stolen credentials are denied by the
// policy the isolation wrote, which shows the instance ARN in it is the one IAM sees.
func TestIsolationAndReleaseInOtherPartitions(t *testing.T) {
	for region, partition := range map[string]string{"us-gov-west-1": "aws-us-gov", "cn-north-1": "aws-cn"} {
		t.Run(partition, func(t *testing.T) {
			ctx := context.Background()
			sc := defaultScenario(t)
			sc.Region = region
			for i := range sc.Subnets {
				sc.Subnets[i].AvailabilityZone = region + "a"
			}
			srv, err := sim.Start(sc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
			iso := isolationRunner(t, srv, sc, asl.Options{})
			rel, err := runner.New(runner.Config{Definition: ec2isolation.ReleaseDefinition, StateMachineName: runner.ReleaseStateMachineName,
				Region: srv.Region(), Account: srv.AccountID(), AWS: srv.AWSConfig, Env: stackenv.Getenv(env),
				Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}

			var ev map[string]any
			if err := json.Unmarshal(isolateEvent(t), &ev); err != nil {
				t.Fatal(err)
			}
			instance := workflow.TagEvent{Resources: toStrings(ev["resources"])}.InstanceID()
			ev["region"], ev["account"] = region, srv.AccountID()
			ev["resources"] = []string{"arn:" + partition + ":ec2:" + region + ":" + srv.AccountID() + ":instance/" + instance}
			event, _ := json.Marshal(ev)
			var stolen string
			srv.Update(func(a *sim.Account) { stolen, err = a.InstanceCredentials(instance) })
			if err != nil {
				t.Fatal(err)
			}

			srv.ApplyTagEvent(event)
			if e := iso.Start(ctx, "isolate-1", event); e.Status != asl.StatusSucceeded {
				t.Fatalf("isolation: %s %s %s", e.Status, e.Error, e.Cause)
			}
			_, err = ec2.NewFromConfig(srv.AWSConfig(stolen)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			if steperr.Code(err) != "UnauthorizedOperation" {
				t.Errorf("isolated in %s: the instance's stolen credentials get %v, want UnauthorizedOperation (the deny must match)", partition, err)
			}
			var isolatedRole sim.RoleState
			srv.Update(func(a *sim.Account) { isolatedRole, _ = a.Role("web-app-role") })

			ev["detail"].(map[string]any)["tags"].(map[string]any)[env["TAG_KEY"]] = env["RELEASE_TAG_VALUE"]
			releaseEvent, _ := json.Marshal(ev)
			srv.ApplyTagEvent(releaseEvent)
			if e := rel.Start(ctx, "release-1", releaseEvent); e.Status != asl.StatusSucceeded {
				t.Fatalf("release: %s %s %s", e.Status, e.Error, e.Cause)
			}
			_, err = ec2.NewFromConfig(srv.AWSConfig(stolen)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			if steperr.Code(err) != "UnauthorizedOperation" {
				t.Errorf("released in %s: the stolen credentials get %v, want still denied", partition, err)
			}

			// Everything the product wrote.
			written := map[string]string{}
			for name, doc := range isolatedRole.InlinePolicies {
				written["isolated role policy "+name] = doc
			}
			srv.Update(func(a *sim.Account) {
				r, _ := a.Role("web-app-role")
				for name, doc := range r.InlinePolicies {
					written["released role policy "+name] = doc
				}
				for _, v := range a.ObjectVersions(env["INCIDENT_BUCKET"], workflow.IncidentKey(srv.AccountID(), region, instance)) {
					written["incident record version "+v.VersionID] = string(v.Body)
				}
			})
			for i, m := range srv.Messages() {
				written["notification "+string(rune('1'+i))] = m.TopicArn + "\n" + m.Subject + "\n" + m.Message
			}
			if len(srv.Messages()) != 2 || !strings.Contains(written["incident record version "+lastVersion(srv, env, region, instance)], "release-1") {
				t.Errorf("want two notifications and the record of both executions; have %d notifications", len(srv.Messages()))
			}
			arns := 0
			for what, text := range written {
				for _, m := range arnPartition.FindAllStringSubmatch(text, -1) {
					arns++
					if m[1] != partition {
						t.Errorf("%s writes an ARN of partition %q, want %q: …%s…", what, m[1], partition, around(text, m[0]))
					}
				}
			}
			if arns < 10 {
				t.Errorf("only %d ARNs found in what the product wrote: %v", arns, keys(written))
			}
			t.Logf("%s: %d ARNs checked in %d documents", partition, arns, len(written))
		})
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func lastVersion(srv *sim.Server, env map[string]string, region, instance string) string {
	var id string
	srv.Update(func(a *sim.Account) {
		vs := a.ObjectVersions(env["INCIDENT_BUCKET"], workflow.IncidentKey(srv.AccountID(), region, instance))
		if len(vs) > 0 {
			id = vs[len(vs)-1].VersionID
		}
	})
	return id
}

func around(text, sub string) string {
	i := strings.Index(text, sub)
	return text[max(0, i-60):min(len(text), i+len(sub)+60)]
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
