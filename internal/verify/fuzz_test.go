package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// FuzzVerify runs the step on any JSON payload, decoded as the Lambda runtime decodes it: anything that decodes
// gets a result or a steperr error; the step changes only the instance its input names (its ENIs, its profile
// associations) and groups ec2-isolation manages; what it reports contained reads back contained.
func FuzzVerify(f *testing.F) {
	srv := start(f)
	in := isolate(f, srv, secgroup.ModeDirect)
	valid, err := json.Marshal(in)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(valid),
		`{"instanceId":"` + instance + `","executionName":"exec-1"}`,
		`{"instanceId":"` + instance + `","executionName":"exec-1","groups":{"groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0web"}]}}`,
		`{"instanceId":"` + instance + `","executionName":"exec-1","record":{"instanceId":"` + instance + `","isolationGroups":[{"vpcId":"vpc-0b2","isolationGroupId":"sg-0db"}],"networkInterfaces":[]}}`,
		`{"instanceId":"` + spare + `","executionName":"exec-1"}`,
		`{"instanceId":"i-00000000000000000","executionName":"exec-1"}`,
		`{"instanceId":"` + instance + `","executionName":"exec-1","record":{"instanceId":"` + spare + `"}}`,
		`{"instanceId":"i-0123","executionName":"x"}`, `{}`, `null`, `{"instanceId":7}`,
	} {
		f.Add([]byte(seed))
	}
	handler := lambda.NewHandler(verifier(srv, secgroup.ModeDirect).Handle)
	r := reader{ec2: client(srv, "reader")}

	f.Fuzz(func(t *testing.T, payload []byte) {
		var vin workflow.VerifyInput
		if json.Unmarshal(payload, &vin) != nil {
			return
		}
		srv.ResetCalls()
		out, err := handler.Invoke(context.Background(), payload)
		if err != nil && !strings.HasPrefix(fmt.Sprintf("%T", err), "*steperr.") {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		for _, c := range srv.Calls() {
			if c.Caller != caller || !c.Mutating || c.ErrorCode != "" {
				continue
			}
			switch c.Action {
			case "ModifyNetworkInterfaceAttribute":
				if eni := c.Params.Get("NetworkInterfaceId"); !slices.Contains(attachedTo(t, r, vin.InstanceID), eni) {
					t.Errorf("changed %s, not an ENI of %s", eni, vin.InstanceID)
				}
			case "AssociateIamInstanceProfile":
				if c.Params.Get("InstanceId") != vin.InstanceID {
					t.Errorf("associated a profile with %s", c.Params.Get("InstanceId"))
				}
			case "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress":
				r.t = t
				if sg := r.group(c.Params.Get("GroupId")); !secgroup.Managed(&sg) {
					t.Errorf("%s on %s, not a managed group", c.Action, c.Params.Get("GroupId"))
				}
			}
		}
		if err == nil {
			var got workflow.VerifyOutput
			if json.Unmarshal(out, &got) != nil || !got.Contained {
				t.Fatalf("no error but not contained: %s", out)
			}
			if vin.InstanceID == instance {
				r.t = t
				r.contained()
			}
		}
	})
}

// attachedTo lists the ENIs attached to the instance now.
func attachedTo(t *testing.T, r reader, id string) []string {
	r.t = t
	var out []string
	for eni := range r.enisOf(id) {
		out = append(out, eni)
	}
	return out
}
