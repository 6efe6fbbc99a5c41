// Package notify is the "Notify success" / "Notify failure" step: one SNS message per execution outcome, with
// per-protocol bodies (MessageStructure json): a readable plain-text summary for email, and an AWS Chatbot
// (Amazon Q Developer in chat applications) custom notification for chat channels.
//
// It serves both workflows (NotifyInput.Workflow): the isolation and the release. "Notify failure" returns
// steperr.IsolationFailed (isolation) or steperr.ReleaseFailed (release) after publishing, so that the execution
// ends FAILED there.
// A redrive restarts at that state: seeing the execution's redrive count greater than the failures', it
// publishes nothing and answers which state to resume at.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// EnvTopicARN names the SNS topic (stack output of the template).
const EnvTopicARN = "TOPIC_ARN"

// EnvCentralTopicARN names the organization's central topic (parameter CentralTopicArn), "" for none.
const EnvCentralTopicARN = "CENTRAL_TOPIC_ARN"

// Settings of the notify function.
type Settings struct {
	TopicARN string
	// RerunCommand, set only by the local runs (isolation run / release: env EnvRerunCommand), replaces the redrive
	// advice: such an execution exists only in the responder's process, and running the command again resumes it.
	RerunCommand string
	// CentralTopicARN also receives every notification published to TopicARN (issue 13, item 15).
	CentralTopicARN string
}

// EnvRerunCommand carries Settings.RerunCommand; the stack never sets it.
const EnvRerunCommand = "RERUN_COMMAND"

// Standard topics only: Chatbot does not subscribe to FIFO topics, and a FIFO publish needs a message group.
var topicARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)

// SettingsFromEnv reads the settings (os.Getenv in a Lambda).
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{TopicARN: getenv(EnvTopicARN), RerunCommand: getenv(EnvRerunCommand), CentralTopicARN: getenv(EnvCentralTopicARN)}
	return s, s.Check()
}

// Check reports a steperr.ConfigError when the topic ARN is missing or not a standard SNS topic's.
func (s Settings) Check() error {
	switch {
	case s.TopicARN == "":
		return &steperr.ConfigError{Reason: EnvTopicARN + " is not set"}
	case !topicARNPattern.MatchString(s.TopicARN):
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q is not the ARN of a standard SNS topic", EnvTopicARN, s.TopicARN)}
	case s.CentralTopicARN != "" && !topicARNPattern.MatchString(s.CentralTopicARN):
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q is not the ARN of a standard SNS topic", EnvCentralTopicARN, s.CentralTopicARN)}
	}
	return nil
}

// Region is a topic ARN's region: the central topic may be in another region than the function.
func Region(topicARN string) string {
	parts := strings.Split(topicARN, ":")
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// PublishAPI is the part of the SNS client the handler uses.
type PublishAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Handler is the handler of "Notify success" and "Notify failure".
type Handler struct {
	sns PublishAPI
	s   Settings
	log *slog.Logger
	// central publishes to Settings.CentralTopicARN (WithCentral).
	central PublishAPI
}

// New returns the handler. s must have passed Check (SettingsFromEnv does it).
func New(client PublishAPI, s Settings, log *slog.Logger) *Handler {
	return &Handler{sns: client, s: s, log: log}
}

// WithCentral sets the client that publishes to the central topic: a client of that topic's region, whose
// credentials are this function's (the central topic's policy lets the organization publish).
func (h *Handler) WithCentral(client PublishAPI) *Handler {
	h.central = client
	return h
}

// State names of this step in the definition.
const (
	stateSuccess = "Notify success"
	stateFailure = "Notify failure"
)

// Handle publishes the notification of the execution's outcome. SUCCEEDED: returns the message id. FAILED:
// returns steperr.IsolationFailed (steperr.ReleaseFailed for the release) once published, or, when a redrive is
// resuming, publishes nothing and returns the state to resume at.
func (h *Handler) Handle(ctx context.Context, in workflow.NotifyInput) (workflow.NotifyOutput, error) {
	state := stateSuccess
	if in.Outcome != workflow.OutcomeSucceeded {
		state = stateFailure
	}
	log := h.log.With("instance", instanceID(in), "execution", in.ExecutionName, "step", state)
	if in.Workflow == workflow.WorkflowNearMiss {
		return h.nearMiss(ctx, in, log)
	}
	if err := check(in, state); err != nil {
		log.Error("invalid input", "error", err)
		return workflow.NotifyOutput{}, err
	}
	if resuming(in) {
		log.Info("redrive: resuming at the failed state, nothing published",
			"resumeAt", in.Failures[0].State, "redriveCount", in.RedriveCount)
		return workflow.NotifyOutput{ResumeAt: in.Failures[0].State}, nil
	}

	in.RerunCommand = h.s.RerunCommand
	msg, err := render(in)
	if err != nil {
		return workflow.NotifyOutput{}, &steperr.InvalidInput{Step: state, Reason: err.Error()}
	}
	out, err := h.sns.Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(h.s.TopicARN),
		Subject:          aws.String(msg.subject),
		Message:          aws.String(msg.body),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		err = steperr.FromAWS("publish the notification to "+h.s.TopicARN, err)
		log.Error("publish", "error", err)
		return workflow.NotifyOutput{}, err
	}
	id := aws.ToString(out.MessageId)
	log.Info("notification published", "outcome", in.Outcome, "messageId", id, "topic", h.s.TopicARN)
	result := workflow.NotifyOutput{MessageID: id, Central: h.publishCentral(ctx, msg, log)}
	if in.Outcome == workflow.OutcomeFailed {
		if isRelease(in) {
			return result, &steperr.ReleaseFailed{Summary: failureSummary(in)}
		}
		if isEvidence(in) {
			return result, &steperr.EvidenceFailed{Summary: failureSummary(in)}
		}
		return result, &steperr.IsolationFailed{Summary: failureSummary(in)}
	}
	return result, nil
}

// publishCentral publishes the same message to the organization's central topic. Its failure is logged and
// reported, never the step's: the stack's topic already has the message, and a retry would publish it twice.
func (h *Handler) publishCentral(ctx context.Context, msg message, log *slog.Logger) *workflow.CentralCopy {
	if h.s.CentralTopicARN == "" {
		return nil
	}
	c := &workflow.CentralCopy{Target: h.s.CentralTopicARN}
	if h.central == nil {
		c.Error = "no client for the central topic"
		log.Error("central topic", "topic", c.Target, "error", c.Error)
		return c
	}
	out, err := h.central.Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(h.s.CentralTopicARN),
		Subject:          aws.String(msg.subject),
		Message:          aws.String(msg.body),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		c.Error = steperr.FromAWS("publish the notification to the central topic "+h.s.CentralTopicARN, err).Error()
		log.Error("central topic: notification not copied", "topic", c.Target, "error", c.Error)
		return c
	}
	c.ID = aws.ToString(out.MessageId)
	log.Info("notification copied to the central topic", "topic", c.Target, "messageId", c.ID)
	return c
}

func check(in workflow.NotifyInput, state string) error {
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: state, Reason: fmt.Sprintf(format, a...)}
	}
	switch in.Workflow {
	case "", workflow.WorkflowIsolation, workflow.WorkflowRelease:
	case workflow.WorkflowEvidence:
		if in.Outcome == workflow.OutcomeSucceeded {
			return bad("the evidence workflow notifies only a failure")
		}
	default:
		return bad("unknown workflow %q (want %s, %s or %s)", plain(in.Workflow, 50), workflow.WorkflowIsolation, workflow.WorkflowRelease, workflow.WorkflowEvidence)
	}
	switch in.Outcome {
	case workflow.OutcomeSucceeded:
		if len(in.Failures) > 0 {
			return bad("outcome %s with %d failures", in.Outcome, len(in.Failures))
		}
	case workflow.OutcomeFailed:
		if len(in.Failures) == 0 {
			return bad("outcome %s without any failure", in.Outcome)
		}
		for i, f := range in.Failures {
			if f.State == "" {
				return bad("failure %d names no state", i)
			}
		}
	default:
		return bad("unknown outcome %q (want %s or %s)", in.Outcome, workflow.OutcomeSucceeded, workflow.OutcomeFailed)
	}
	return nil
}

// resuming: this run of "Notify failure" is a redrive, which restarts at the state that failed last, and the
// failures it carries were recorded before the redrive. They were notified then.
func resuming(in workflow.NotifyInput) bool {
	if in.Outcome != workflow.OutcomeFailed {
		return false
	}
	for _, f := range in.Failures {
		if in.RedriveCount <= f.RedriveCount {
			return false
		}
	}
	return true
}

// instanceID is the instance the execution is about, from the record or, before one exists, the input or the
// event.
func instanceID(in workflow.NotifyInput) string {
	switch {
	case in.Record != nil && in.Record.InstanceID != "":
		return in.Record.InstanceID
	case in.InstanceID != "":
		return in.InstanceID
	case in.Incident != nil && in.Incident.PreIsolation.Record.InstanceID != "":
		return in.Incident.PreIsolation.Record.InstanceID
	case in.Event != nil:
		return in.Event.InstanceID()
	}
	return ""
}

// isRelease: the input is the release workflow's.
func isRelease(in workflow.NotifyInput) bool { return in.Workflow == workflow.WorkflowRelease }

// isEvidence: the input is the evidence state machine's (issue 16), which notifies only a failure.
func isEvidence(in workflow.NotifyInput) bool { return in.Workflow == workflow.WorkflowEvidence }

// failureSummary names the failed states and their errors (the execution's error cause in the console).
func failureSummary(in workflow.NotifyInput) string {
	var parts []string
	for _, f := range in.Failures {
		parts = append(parts, fmt.Sprintf("%q failed with %s: %s", f.State, plain(f.Error, 100), plain(causeText(f.Cause), 300)))
	}
	s := strings.Join(parts, "; ")
	if id := instanceID(in); id != "" {
		s = fmt.Sprintf("instance %s: %s", plain(id, 40), s)
	}
	return s
}

// causeText is the message of a Catch's cause. For a Lambda error the cause is the function's error document,
// {"errorMessage": …, "errorType": …}: its message is what a reader wants.
func causeText(cause string) string {
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &doc) == nil && doc.ErrorMessage != "" {
		return doc.ErrorMessage
	}
	return cause
}
