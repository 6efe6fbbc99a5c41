package notify_test

// Issue 13, item 15: every notification also goes to the organization's central topic, in the security account
// (another account and region), whose policy accepts the organization only (organization/security-account.yaml).
// Two simulated accounts: the member account's own topic and the security account's central topic.

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/notify"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
)

func TestNotificationIsCopiedToTheCentralTopic(t *testing.T) {
	for _, c := range []struct {
		name, centralCaller string
		wantCopied          bool
	}{
		{"a member of the organization", simtest.MemberKey, true},
		{"an account outside the organization", simtest.OutsiderKey, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			member := start(t, sim.Scenario{Account: "123456789012", Region: "us-east-1", Topics: []sim.Topic{{Name: topicName}}})
			security, central := simtest.SecurityAccount(t, "eu-west-1")
			if got := notify.Region(central); got != "eu-west-1" {
				t.Fatalf("Region(%s) = %q", central, got)
			}
			h := notify.New(sns.NewFromConfig(member.AWSConfig("notify")),
				notify.Settings{TopicARN: topicARN, CentralTopicARN: central}, slog.New(slog.DiscardHandler)).
				WithCentral(sns.NewFromConfig(security.AWSConfig(c.centralCaller)))

			out, err := h.Handle(context.Background(), succeeded())
			if err != nil {
				t.Fatalf("Handle: %v (the central copy never fails the step)", err)
			}
			own, copied := member.Messages(), security.Messages()
			if len(own) != 1 || out.MessageID != own[0].MessageID {
				t.Fatalf("the stack's topic got %d messages (output %q), want the one notification", len(own), out.MessageID)
			}
			if out.Central == nil || out.Central.Target != central {
				t.Fatalf("output.central = %+v, want the central topic", out.Central)
			}
			if !c.wantCopied {
				if len(copied) != 0 || out.Central.ID != "" || !strings.Contains(out.Central.Error, "AuthorizationError") {
					t.Errorf("outsider: central topic got %d messages, output.central = %+v; want none and the AuthorizationError", len(copied), out.Central)
				}
				return
			}
			if len(copied) != 1 || copied[0].MessageID != out.Central.ID || out.Central.Error != "" {
				t.Fatalf("central topic got %+v, output.central = %+v; want the copy", copied, out.Central)
			}
			// The same message: subject, per-protocol bodies, structure.
			if copied[0].Subject != own[0].Subject || copied[0].Message != own[0].Message || copied[0].MessageStructure != "json" {
				t.Errorf("the central copy differs from the notification:\n%+v\n%+v", copied[0], own[0])
			}
		})
	}
}

// Without a central topic nothing more is published and the output has no central part.
func TestNoCentralTopicNoCopy(t *testing.T) {
	member := start(t, scenario())
	out, err := newHandler(t, member).Handle(context.Background(), succeeded())
	if err != nil || out.Central != nil {
		t.Fatalf("out = %+v, err = %v; want no central copy", out, err)
	}
}

func TestCentralTopicSetting(t *testing.T) {
	env := map[string]string{notify.EnvTopicARN: topicARN, notify.EnvCentralTopicARN: "arn:aws:sqs:eu-west-1:999999999999:q"}
	if _, err := notify.SettingsFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("a central topic ARN that is no SNS topic's was accepted")
	}
	env[notify.EnvCentralTopicARN] = "arn:aws:sns:eu-west-1:999999999999:central"
	s, err := notify.SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil || s.CentralTopicARN != env[notify.EnvCentralTopicARN] {
		t.Errorf("settings = %+v, err = %v", s, err)
	}
}
