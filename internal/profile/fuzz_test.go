package profile_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// bystander is an instance no fuzzed input may name (its id is not one the fuzzer's seeds hold): its profile
// must never change.
const bystander = "i-0fffffffffffffff0"

// fuzzProfile runs one of the two profile steps on any JSON payload, decoded as the Lambda runtime decodes it.
// The payload comes from the state machine, so a payload that does not decode is a definition bug, reported by
// the runtime; anything that decodes gets either a result or a steperr error (an unusable input is InvalidInput,
// decided before any AWS call), and only the named instance's associations may change.
func fuzzProfile(f *testing.F, step string) {
	for _, seed := range []string{
		`{"instanceId":"i-0123456789abcdef0","executionName":"exec-1","reason":"tag Isolate=true"}`,
		`{"instanceId":"i-0123456789abcdef0","executionName":""}`,
		`{"instanceId":"i-0123456789abcdef1","executionName":"x"}`,
		`{"instanceId":"i-0123456789ABCDEF0","executionName":"x"}`,
		`{"instanceId":"i-0123456789abcdef0/../i-0fffffffffffffff0","executionName":"x"}`,
		`{"instanceId":"","executionName":"x"}`, `{}`, `null`, `[]`, `{"instanceId":7}`,
	} {
		f.Add([]byte(seed))
	}
	sc := scenario(sim.Instance{Profile: "web-server"})
	sc.Instances = append(sc.Instances, sim.Instance{ID: bystander, SubnetID: "subnet-0aaa000000000001", Profile: "web-server"})
	srv := simtest.Start(f, sc)
	c := newClient(nil, srv, "fuzz-"+step)
	reader := newClient(nil, srv, "reader")
	log := slog.New(slog.DiscardHandler)
	var h lambda.Handler
	if step == "attach" {
		h = lambda.NewHandler(profile.NewAttach(c, settings, log).Handle)
	} else {
		h = lambda.NewHandler(profile.NewDisassociate(c, settings, log).Handle)
	}
	bystanderProfile := func(t testing.TB) []string {
		out, err := reader.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{bystander}}}})
		if err != nil {
			t.Fatal(err)
		}
		// The active associations: time alone moves one from associating to associated (still active), or
		// from disassociating to gone (no longer active); only a call makes or ends an active one.
		var got []string
		for _, a := range out.IamInstanceProfileAssociations {
			if a.State == types.IamInstanceProfileAssociationStateAssociating || a.State == types.IamInstanceProfileAssociationStateAssociated {
				got = append(got, aws.ToString(a.AssociationId))
			}
		}
		return got
	}
	before := bystanderProfile(f)

	f.Fuzz(func(t *testing.T, payload []byte) {
		var in workflow.InstanceInput
		if json.Unmarshal(payload, &in) != nil {
			return
		}
		srv.ResetCalls()
		_, err := h.Invoke(context.Background(), payload)
		if err != nil && !isStepError(err) {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		var invalid *steperr.InvalidInput
		if errors.As(err, &invalid) && len(srv.Calls()) > 0 {
			t.Fatalf("%d AWS calls before refusing the input: %v", len(srv.Calls()), err)
		}
		for _, call := range srv.Calls() {
			if id := call.Params.Get("InstanceId"); call.Mutating && id != "" && id != in.InstanceID {
				t.Fatalf("%s on %s, but the input names %q", call.Action, id, in.InstanceID)
			}
		}
		now := bystanderProfile(t)
		if in.InstanceID != bystander && !reflect.DeepEqual(before, now) {
			t.Fatalf("the profile of %s, which the input does not name, changed: %v, was %v", bystander, now, before)
		}
		before = now
	})
}

func FuzzDisassociate(f *testing.F) { fuzzProfile(f, "disassociate") }

func FuzzAttach(f *testing.F) { fuzzProfile(f, "attach") }

// isStepError: err is one of the named types of internal/steperr, as a handler's top-level error must be.
func isStepError(err error) bool {
	t := reflect.TypeOf(err)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == reflect.TypeOf(steperr.InvalidInput{}).PkgPath()
}
