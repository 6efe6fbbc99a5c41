package validate_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const instanceID = "i-0123456789abcdef0"

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func TestRefusesEventBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *workflow.TagEvent)
		reason string // a part of the error message naming what is wrong
	}{
		{"empty event", func(e *workflow.TagEvent) { *e = workflow.TagEvent{} }, "source"},
		{"other source", func(e *workflow.TagEvent) { e.Source = "aws.ec2" }, `source is "aws.ec2"`},
		{"other detail-type", func(e *workflow.TagEvent) { e.DetailType = "EC2 Instance State-change Notification" }, "detail-type"},
		{"other service", func(e *workflow.TagEvent) { e.Detail.Service = "s3" }, "detail.service"},
		{"other resource type", func(e *workflow.TagEvent) {
			e.Detail.ResourceType = "volume"
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:volume/vol-00000000000000001"}
		}, "detail.resource-type"},
		{"volume ARN for an instance event", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:volume/vol-00000000000000001"}
		}, "not an EC2 instance ARN"},
		{"S3 ARN", func(e *workflow.TagEvent) { e.Resources = []string{"arn:aws:s3:::bucket"} }, "not an EC2 instance ARN"},
		{"bare instance id", func(e *workflow.TagEvent) { e.Resources = []string{instanceID} }, "not an EC2 instance ARN"},
		{"no resource", func(e *workflow.TagEvent) { e.Resources = nil }, "0 resources"},
		{"two resources", func(e *workflow.TagEvent) { e.Resources = append(e.Resources, e.Resources[0]) }, "2 resources"},
		{"malformed account", func(e *workflow.TagEvent) { e.Account = "12345" }, "12-digit"},
		{"foreign account in ARN", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:us-east-1:210987654321:instance/" + instanceID}
		}, "account"},
		{"foreign account everywhere", func(e *workflow.TagEvent) {
			e.Account = "210987654321"
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID}
		}, "account"},
		{"ARN in another region than the event", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:eu-west-1:123456789012:instance/" + instanceID}
		}, "region"},
		{"event from another region", func(e *workflow.TagEvent) {
			e.Region = "eu-west-1"
			e.Resources = []string{"arn:aws:ec2:eu-west-1:123456789012:instance/" + instanceID}
		}, "this stack acts in us-east-1"},
		{"malformed region", func(e *workflow.TagEvent) { e.Region = "US_EAST_1" }, "region"},
		{"malformed instance id", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:instance/i-XYZ"}
		}, "not an instance id"},
		{"instance id with upper case", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789ABCDEF0"}
		}, "not an instance id"},
		{"ARN with trailing path", func(e *workflow.TagEvent) {
			e.Resources = []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID + "/x"}
		}, "not an instance id"},
		{"tag key not among the changed keys", func(e *workflow.TagEvent) { e.Detail.ChangedTagKeys = []string{"Name"} }, "changed tag keys"},
		{"tag removed", func(e *workflow.TagEvent) { delete(e.Detail.Tags, "Isolate") }, "no longer has tag"},
		{"tag value differs in case", func(e *workflow.TagEvent) { e.Detail.Tags["Isolate"] = "True" }, `"True"`},
		{"tag value other", func(e *workflow.TagEvent) { e.Detail.Tags["Isolate"] = "false" }, `"false"`},
		{"tag key differs in case", func(e *workflow.TagEvent) {
			e.Detail.ChangedTagKeys = []string{"isolate"}
			e.Detail.Tags = map[string]string{"isolate": "true"}
		}, "changed tag keys"},
	}
	sc := network()
	sc.Instances = []sim.Instance{{ID: instanceID, SubnetID: "subnet-0aaa000000000001"}}
	srv, client := start(t, sc)
	h := validate.New(client, settings, slog.New(slog.DiscardHandler))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCalls()
			ev := tagEvent(instanceID)
			tt.change(&ev)
			_, err := h.Handle(context.Background(), workflow.ValidateInput{Event: ev, ExecutionName: "exec-1"})
			if !isA[*steperr.InvalidEvent](err) {
				t.Fatalf("error = %T %v, want *steperr.InvalidEvent", err, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if calls := srv.Calls(); len(calls) > 0 {
				t.Errorf("%d AWS calls before refusing, first %s", len(calls), calls[0].Action)
			}
		})
	}

	t.Run("the unchanged event is accepted", func(t *testing.T) {
		// Guards the table: each case fails because of its change, not because of the base event.
		if _, err := h.Handle(context.Background(), workflow.ValidateInput{Event: tagEvent(instanceID), ExecutionName: "exec-1"}); err != nil {
			t.Fatalf("Handle: %v", err)
		}
	})
}

func TestRefusesInstance(t *testing.T) {
	tests := []struct {
		name     string
		instance *sim.Instance
		update   func(a *sim.Account) error
		is       func(error) bool
		wantType string
		reason   string
	}{
		{name: "unknown instance", is: isA[*steperr.InstanceNotFound], wantType: "InstanceNotFound", reason: "not found"},
		{
			name:     "terminated instance",
			instance: &sim.Instance{ID: instanceID, SubnetID: "subnet-0aaa000000000001", State: "terminated"},
			is:       isA[*steperr.InstanceNotIsolatable], wantType: "InstanceNotIsolatable", reason: "terminated",
		},
		{
			name:     "shutting-down instance",
			instance: &sim.Instance{ID: instanceID, SubnetID: "subnet-0aaa000000000001", State: "shutting-down"},
			is:       isA[*steperr.InstanceNotIsolatable], wantType: "InstanceNotIsolatable", reason: "shutting-down",
		},
		{
			name:     "terminated since tagged",
			instance: &sim.Instance{ID: instanceID, SubnetID: "subnet-0aaa000000000001", Profile: "web-server"},
			update:   func(a *sim.Account) error { return a.TerminateInstance(instanceID) },
			is:       isA[*steperr.InstanceNotIsolatable], wantType: "InstanceNotIsolatable", reason: "terminated",
		},
		{
			name:     "instance in no VPC",
			instance: &sim.Instance{ID: instanceID},
			is:       isA[*steperr.InstanceNotIsolatable], wantType: "InstanceNotIsolatable", reason: "no VPC",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := network()
			if tt.instance != nil {
				sc.Instances = []sim.Instance{*tt.instance}
			}
			srv, client := start(t, sc)
			if tt.update != nil {
				var err error
				srv.Update(func(a *sim.Account) { err = tt.update(a) })
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err := validate.New(client, settings, nil).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(instanceID), ExecutionName: "exec-1"})
			if !tt.is(err) {
				t.Fatalf("error = %T %v, want %s", err, err, tt.wantType)
			}
			if !strings.Contains(err.Error(), instanceID) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not name the instance and say %q", err, tt.reason)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
			if len(srv.Calls()) == 0 {
				t.Error("refused without asking EC2")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"all set", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": groupName}, true},
		{"untrack-first", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": groupName, "CONNECTION_TRACKING": "untrack-first"}, true},
		{"key with allowed punctuation", map[string]string{"TAG_KEY": "security:isolate/now", "TAG_VALUE": "yes", "ISOLATION_GROUP_NAME": groupName}, true},
		{"group name missing", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true"}, false},
		{"group name EC2 refuses", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": "sg-quarantine"}, false},
		{"unknown tracking mode", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": groupName, "CONNECTION_TRACKING": "untrack"}, false},
		{"key missing", map[string]string{"TAG_VALUE": "true"}, false},
		{"value missing", map[string]string{"TAG_KEY": "Isolate"}, false},
		{"reserved prefix", map[string]string{"TAG_KEY": "aws:isolate", "TAG_VALUE": "true"}, false},
		{"invalid character", map[string]string{"TAG_KEY": "Isolate!", "TAG_VALUE": "true"}, false},
		{"key too long", map[string]string{"TAG_KEY": strings.Repeat("k", 129), "TAG_VALUE": "true"}, false},
		{"value too long", map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": strings.Repeat("v", 257)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := validate.SettingsFromEnv(func(k string) string { return tt.env[k] })
			if tt.ok {
				mode := secgroup.Mode(tt.env["CONNECTION_TRACKING"])
				if mode == "" {
					mode = secgroup.ModeDirect
				}
				want := validate.Settings{TagKey: tt.env["TAG_KEY"], TagValue: tt.env["TAG_VALUE"],
					Groups: secgroup.Settings{GroupName: tt.env["ISOLATION_GROUP_NAME"], Mode: mode}}
				if err != nil || s != want {
					t.Fatalf("SettingsFromEnv = %+v, %v; want %+v", s, err, want)
				}
				return
			}
			if !isA[*steperr.ConfigError](err) {
				t.Fatalf("error = %T %v, want *steperr.ConfigError", err, err)
			}
		})
	}
}

func TestHandlerRefusesBadSettingsWithoutCalls(t *testing.T) {
	for name, s := range map[string]validate.Settings{
		"no tag value":  {TagKey: "Isolate", Groups: settings.Groups},
		"no group name": {TagKey: "Isolate", TagValue: "true", Groups: secgroup.Settings{Mode: secgroup.ModeDirect}},
		"no mode":       {TagKey: "Isolate", TagValue: "true", Groups: secgroup.Settings{GroupName: groupName}},
	} {
		t.Run(name, func(t *testing.T) {
			srv, client := start(t, network())
			_, err := validate.New(client, s, nil).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(instanceID), ExecutionName: "exec-1"})
			if !isA[*steperr.ConfigError](err) {
				t.Fatalf("error = %T %v, want *steperr.ConfigError", err, err)
			}
			if n := len(srv.Calls()); n > 0 {
				t.Errorf("%d AWS calls", n)
			}
		})
	}
}
