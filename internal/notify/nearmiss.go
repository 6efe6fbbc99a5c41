package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// nearMissStep names the sender in errors and logs: no state machine runs, EventBridge invokes the function.
const nearMissStep = "Notify near-miss tag"

// nearMiss publishes that a tag change on the isolation key carried a value that starts nothing (issue 13 item
// 5): tag values are compared exactly by the rules, so "True" or "true " isolate nothing, and without this the
// responder would wait for a notification that never comes.
func (h *Handler) nearMiss(ctx context.Context, in workflow.NotifyInput, log *slog.Logger) (workflow.NotifyOutput, error) {
	nm, ev := in.NearMiss, in.Event
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: nearMissStep, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case nm == nil || nm.TagKey == "" || nm.IsolateValue == "":
		return workflow.NotifyOutput{}, bad("nearMiss names no tag key and values")
	case ev == nil || ev.InstanceID() == "":
		return workflow.NotifyOutput{}, bad("no tag change event of an instance")
	}
	value, set := ev.Detail.Tags[nm.TagKey]
	if !set || value == nm.IsolateValue || value == nm.ReleaseValue {
		// The rule's pattern excludes these: an input that is not a near miss is refused, never announced.
		return workflow.NotifyOutput{}, bad("tag %s is %q in the event: not a near miss", plain(nm.TagKey, 128), plain(value, 256))
	}
	msg, err := renderNearMiss(*nm, *ev, value)
	if err != nil {
		return workflow.NotifyOutput{}, bad("%v", err)
	}
	out, err := h.sns.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(h.s.TopicARN), Subject: aws.String(msg.subject), Message: aws.String(msg.body),
		MessageStructure: aws.String("json"),
	})
	if err != nil {
		err = steperr.FromAWS("publish the near-miss notification to "+h.s.TopicARN, err)
		log.Error("publish", "error", err)
		return workflow.NotifyOutput{}, err
	}
	id := aws.ToString(out.MessageId)
	log.Info("near-miss notification published", "value", value, "messageId", id)
	return workflow.NotifyOutput{MessageID: id}, nil
}

// nearMissReason says why the value started nothing, naming the likely intent.
func nearMissReason(nm workflow.NearMiss, value string) string {
	trimmed := strings.TrimSpace(value)
	for _, w := range []struct{ want, verb string }{{nm.IsolateValue, "isolate"}, {nm.ReleaseValue, "release"}} {
		switch {
		case w.want == "":
		case trimmed == w.want:
			return fmt.Sprintf("it has spaces around %q (the %s value): values are compared exactly", w.want, w.verb)
		case strings.EqualFold(trimmed, w.want):
			return fmt.Sprintf("it differs from %q (the %s value) in case: values are case-sensitive", w.want, w.verb)
		}
	}
	return fmt.Sprintf("it is neither %q (isolates) nor %q (releases)", nm.IsolateValue, nm.ReleaseValue)
}

func renderNearMiss(nm workflow.NearMiss, ev workflow.TagEvent, value string) (message, error) {
	id := ev.InstanceID()
	shownID := unknownInstance
	if instanceIDPattern.MatchString(id) {
		shownID = id
	}
	v := func(s string) string { return plain(s, maxValue) }
	reason := nearMissReason(nm, value)
	todo := fmt.Sprintf("To isolate it, set the tag to exactly %s=%s; to release an isolated instance, %s=%s.",
		v(nm.TagKey), v(nm.IsolateValue), v(nm.TagKey), v(nm.ReleaseValue))

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("NOTHING WAS DONE: EC2 instance %s is NOT isolated (nor released).", v(id))
	p("")
	p("Its tag %s was set to %s (account %s, region %s, %s), which starts no workflow: %s.", v(nm.TagKey), quoted(value),
		v(ev.Account), v(ev.Region), v(ev.Time), reason)
	p("%s", todo)

	c := func(s string) string { return code(s, maxValue) }
	chat := chatbotNotification{Version: "1.0", Source: "custom", ID: plain(ev.ID, maxValue)}
	chat.Content.TextType = "client-markdown"
	chat.Content.Title = ":warning: " + chatText("Tag "+nm.TagKey+" on "+shownID+": nothing was done", 250)
	chat.Content.Description = fmt.Sprintf("*Instance* %s *is NOT isolated*: its tag %s was set to %s, which starts no workflow (%s).",
		c(id), c(nm.TagKey), code(quoted(value), maxValue), chatText(reason, 400))
	chat.Content.NextSteps = []string{chatText(todo, 400)}
	chat.Content.Keywords = []string{"ec2-isolation", "near-miss"}
	chat.Metadata = chatbotMetadata{ThreadID: "ec2-isolation-" + shownID, EventType: "EC2IsolationTagNearMiss",
		Summary: chatText("Tag "+nm.TagKey+" on "+shownID+" starts nothing", 250)}
	if len(ev.Resources) == 1 {
		chat.Metadata.RelatedResources = []string{plain(ev.Resources[0], maxValue)}
	}
	doc, err := json.Marshal(chat)
	if err != nil {
		return message{}, err
	}
	body, err := json.Marshal(map[string]string{"default": string(doc), "https": string(doc), "email": b.String()})
	if err != nil {
		return message{}, err
	}
	return message{subject: subject(fmt.Sprintf("EC2 isolation NOT started for %s: tag %s=%s", shownID, nm.TagKey, quoted(value))), body: string(body)}, nil
}

// quoted shows a tag value with its spaces visible: Go quoting escapes control characters, so it stays one line.
func quoted(value string) string {
	if r := []rune(value); len(r) > maxValue {
		value = string(r[:maxValue]) + "…"
	}
	return fmt.Sprintf("%q", value)
}
