package validate_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const fuzzInstance = "i-0123456789abcdef0"

// FuzzEvent feeds any JSON value as the execution input to "Validate and record", decoded as the Lambda runtime
// decodes it. Whatever it is, the step answers a record or a steperr error (a malformed event is InvalidEvent);
// it never changes the account; an InvalidEvent is decided before any AWS call (but for the instance's owner); and
// it accepts only an event
// that names this account's instance, in this region, with the isolation tag set to its value.
func FuzzEvent(f *testing.F) {
	good, err := json.Marshal(tagEvent(fuzzInstance))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, seed := range []string{
		`{}`, `[]`, `"x"`, `null`, `1`,
		`{"source":"aws.tag","detail-type":"Tag Change on Resource","resources":"arn"}`,
		`{"source":"aws.tag","detail-type":"Tag Change on Resource","account":"123456789012","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],"detail":{"service":"ec2","resource-type":"instance","changed-tag-keys":["Isolate"],"tags":{"Isolate":"true"}}}`,
		`{"source":"aws.tag","detail-type":"Tag Change on Resource","account":"210987654321","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:210987654321:instance/i-0123456789abcdef0"],"detail":{"service":"ec2","resource-type":"instance","changed-tag-keys":["Isolate"],"tags":{"Isolate":"true"}}}`,
		`{"detail":{"tags":{"Isolate":true},"version":"3"}}`,
	} {
		f.Add([]byte(seed))
	}
	sc := network()
	sc.Instances = []sim.Instance{{ID: fuzzInstance, SubnetID: "subnet-0aaa000000000001", Profile: "web-server"}}
	srv := simtest.Start(f, sc)
	h := validate.New(newClient(nil, srv, caller), settings, slog.New(slog.DiscardHandler))
	invoke := lambda.NewHandler(h.Handle)
	wantARN := "arn:aws:ec2:" + region + ":" + account + ":instance/" + fuzzInstance

	f.Fuzz(func(t *testing.T, event []byte) {
		if !json.Valid(event) {
			return // the execution input is JSON: StartExecution refuses anything else
		}
		srv.ResetCalls()
		payload := append(append([]byte(`{"executionName":"fuzz","event":`), event...), '}')
		out, err := invoke.Invoke(context.Background(), payload)
		if err != nil {
			if !isStepError(err) {
				t.Fatalf("error of type %T (not a steperr type, so an unnamed errorType): %v", err, err)
			}
			// Only the instance's owner needs EC2's answer; everything else about the event is checked first.
			if isA[*steperr.InvalidEvent](err) && len(srv.Calls()) > 0 && !strings.Contains(err.Error(), "belongs to account") {
				t.Fatalf("%d AWS calls before refusing the event: %v", len(srv.Calls()), err)
			}
		}
		if m := simtest.Mutating(srv); len(m) > 0 {
			t.Fatalf("validation changed the account: %v", m)
		}
		if err != nil {
			return
		}
		var rec workflow.Record
		if err := json.Unmarshal(out, &rec); err != nil || rec.InstanceID != fuzzInstance {
			t.Fatalf("record %s (%v), want one of %s", out, err, fuzzInstance)
		}
		var ev workflow.TagEvent
		if err := json.Unmarshal(event, &ev); err != nil {
			t.Fatalf("accepted an event that does not decode: %v", err)
		}
		if ev.Source != "aws.tag" || ev.DetailType != "Tag Change on Resource" || ev.Account != account || ev.Region != region ||
			!slices.Equal(ev.Resources, []string{wantARN}) || ev.Detail.Service != "ec2" || ev.Detail.ResourceType != "instance" ||
			!slices.Contains(ev.Detail.ChangedTagKeys, settings.TagKey) || ev.Detail.Tags[settings.TagKey] != settings.TagValue {
			t.Fatalf("accepted an event that is not this account's instance tagged %s=%s: %s", settings.TagKey, settings.TagValue, event)
		}
	})
}

// isStepError: err is one of the named types of internal/steperr, as a handler's top-level error must be.
func isStepError(err error) bool {
	t := reflect.TypeOf(err)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == reflect.TypeOf(steperr.InvalidEvent{}).PkgPath() &&
		!errors.Is(err, context.Canceled)
}
