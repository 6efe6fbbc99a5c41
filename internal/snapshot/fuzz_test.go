package snapshot_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// FuzzSnapshot runs "Snapshot volumes" on any JSON payload, decoded as the Lambda runtime decodes it. The
// payload comes from the state machine, so one that does not decode is a definition bug the runtime reports;
// anything that decodes gets a result or a steperr error (an unusable input is InvalidInput, decided before any
// AWS call); it snapshots only the instance the input names, with a description and tags within EC2's limits
// whatever the execution name and reason; and a second run for the same execution creates nothing.
func FuzzSnapshot(f *testing.F) {
	for _, seed := range []string{
		`{"instanceId":"i-0123456789abcdef0","executionName":"exec-1","reason":"tag Isolate=true"}`,
		`{"instanceId":"i-0123456789abcdef0","executionName":"` + strings.Repeat("ü", 300) + `","reason":"` + strings.Repeat("x", 1000) + `"}`,
		`{"instanceId":"i-0123456789abcdef0","executionName":"e\u0000\n*"}`, `{"instanceId":"i-0123456789abcdef0","executionName":"*"}`,
		`{"instanceId":"i-0123456789abcdef1","executionName":"exec-1"}`,
		`{"instanceId":"vol-0123456789abcdef0","executionName":"exec-1"}`,
		`{"instanceId":"","executionName":"x"}`, `{}`, `null`,
	} {
		f.Add([]byte(seed))
	}
	srv := simtest.Start(f, scenario(threeVolumes...))
	h := lambda.NewHandler(snapshot.New(newClient(nil, srv, "snapshot-volumes"), nil).Handle)

	f.Fuzz(func(t *testing.T, payload []byte) {
		var in workflow.InstanceInput
		if json.Unmarshal(payload, &in) != nil {
			return
		}
		srv.ResetCalls()
		_, err := h.Invoke(ctx, payload)
		if err != nil && !isStepError(err) {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		var invalid *steperr.InvalidInput
		if errors.As(err, &invalid) && len(srv.Calls()) > 0 {
			t.Fatalf("%d AWS calls before refusing the input: %v", len(srv.Calls()), err)
		}
		creates := 0
		for _, call := range srv.Calls() {
			if call.Action != "CreateSnapshots" {
				continue
			}
			creates++
			if id := call.Params.Get("InstanceSpecification.InstanceId"); id != in.InstanceID {
				t.Fatalf("snapshots of %s, but the input names %q", id, in.InstanceID)
			}
			if d := call.Params.Get("Description"); utf8.RuneCountInString(d) > 255 {
				t.Fatalf("description of %d characters", utf8.RuneCountInString(d))
			}
			for k, v := range call.Params {
				if strings.HasSuffix(k, ".Value") && utf8.RuneCountInString(v[0]) > 256 {
					t.Fatalf("tag value of %d characters: %s", utf8.RuneCountInString(v[0]), k)
				}
			}
		}
		if err != nil || creates == 0 {
			return
		}
		srv.ResetCalls()
		if _, err := h.Invoke(ctx, payload); err != nil {
			t.Fatalf("second run: %v", err)
		}
		for _, call := range srv.Calls() {
			if call.Action == "CreateSnapshots" {
				t.Fatalf("the second run for execution %q created another set (the first is not found by its tag)", in.ExecutionName)
			}
		}
	})
}

// isStepError: err is one of the named types of internal/steperr, as a handler's top-level error must be.
func isStepError(err error) bool {
	t := reflect.TypeOf(err)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == reflect.TypeOf(steperr.InvalidInput{}).PkgPath()
}
