package sim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// snsHandlers are the SNS actions served (awsquery protocol).
var snsHandlers = map[string]handler{
	"Publish":            publish,
	"CreateTopic":        createTopic,
	"GetTopicAttributes": getTopicAttributes,
	"ListTopics":         listTopics,
}

type publishResult struct {
	MessageID string `xml:"MessageId"`
}

type createTopicResult struct {
	TopicArn string `xml:"TopicArn"`
}

type xEntry struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type getTopicAttributesResult struct {
	Attributes []xEntry `xml:"Attributes>entry"`
}

type xTopic struct {
	TopicArn string `xml:"TopicArn"`
}

type listTopicsResult struct {
	Topics    []xTopic `xml:"Topics>member"`
	NextToken string   `xml:"NextToken,omitempty"`
}

var topicName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

func createTopic(a *Account, req *request) (any, *apiError) {
	name := req.p.str("Name")
	if !topicName.MatchString(name) {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: Topic Name")
	}
	t := a.createTopic(name) // idempotent: the same name answers the same ARN
	return &createTopicResult{TopicArn: t.arn}, nil
}

func (a *Account) topic(arn string) (*topic, *apiError) {
	if arn == "" {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: TopicArn")
	}
	// ARNs of the account's partition (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
	if !strings.HasPrefix(arn, "arn:"+Partition(a.region)+":sns:") || strings.Count(arn, ":") != 5 {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: TopicArn")
	}
	t := a.topics.get(arn)
	if t == nil {
		return nil, errf(404, "NotFound", "Topic does not exist")
	}
	return t, nil
}

func getTopicAttributes(a *Account, req *request) (any, *apiError) {
	t, err := a.topic(req.p.str("TopicArn"))
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{"TopicArn": t.arn, "Owner": a.id, "DisplayName": "", "SubscriptionsConfirmed": "0",
		"SubscriptionsPending": "0", "SubscriptionsDeleted": "0",
		"Policy": fmt.Sprintf(`{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:Publish"],"Resource":"%s","Condition":{"StringEquals":{"AWS:SourceOwner":"%s"}}}]}`, t.arn, a.id)}
	for k, v := range t.attrs {
		attrs[k] = v
	}
	out := &getTopicAttributesResult{}
	for _, e := range tagList(attrs) {
		out.Attributes = append(out.Attributes, xEntry(e))
	}
	return out, nil
}

func listTopics(a *Account, req *request) (any, *apiError) {
	const page = 100 // ListTopics returns up to 100 topics per page
	start := 0
	if tok := req.p.str("NextToken"); tok != "" {
		if _, err := fmt.Sscanf(tok, "page-%d", &start); err != nil || start < 0 {
			return nil, errf(400, "InvalidParameter", "Invalid parameter: NextToken")
		}
	}
	out := &listTopicsResult{}
	all := a.topics.all()
	for i := start; i < len(all) && i < start+page; i++ {
		out.Topics = append(out.Topics, xTopic{all[i].arn})
	}
	if start+page < len(all) {
		out.NextToken = fmt.Sprintf("page-%d", start+page)
	}
	return out, nil
}

// maxMessageBytes is the Publish size limit: 256 KiB (262,144 bytes) including attributes
// (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
const maxMessageBytes = 256 * 1024

// publish validates as SNS does (API_Publish: Subject rules; MessageStructure json = a JSON object with a string "default" key; 256 KiB) and records the message.
func publish(a *Account, req *request) (any, *apiError) {
	arn := req.p.str("TopicArn")
	if arn == "" {
		arn = req.p.str("TargetArn")
	}
	if req.p.str("PhoneNumber") != "" && arn == "" {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: PhoneNumber is not simulated")
	}
	if !req.p.has("Message") {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null")
	}
	msg := req.p.str("Message")
	if msg == "" {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: Empty message")
	}
	t, err := a.topic(arn)
	if err != nil {
		return nil, err
	}
	if caller := a.principalOf(req.caller); !a.authorize(t.policy, requestContext{caller: caller, action: "sns:Publish", resource: t.arn}) {
		// SNS's answer to a publish no policy allows (API_Publish: AuthorizationError, 403).
		return nil, errf(403, "AuthorizationError", "User: arn:aws:iam::%s:root is not authorized to perform: SNS:Publish on resource: %s because no resource-based policy allows the SNS:Publish action", caller.Account, t.arn)
	}
	if req.p.has("Subject") {
		if err := checkSubject(req.p.str("Subject")); err != nil {
			return nil, err
		}
	}
	size := len(msg)
	for _, e := range req.p.list("MessageAttributes", "entry") {
		size += len(e.str("Name")) + len(e.str("Value", "DataType")) + len(e.str("Value", "StringValue")) + len(e.str("Value", "BinaryValue"))
	}
	if size > maxMessageBytes {
		return nil, errf(400, "InvalidParameter", "Invalid parameter: Message too long")
	}
	structure := req.p.str("MessageStructure")
	switch structure {
	case "":
	case "json":
		var body map[string]any
		if err := json.Unmarshal([]byte(msg), &body); err != nil || body == nil {
			return nil, errf(400, "InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse")
		}
		// Messages as SNS's (github.com/aws/aws-sdk-ruby/issues/346, github.com/sivchari/kumo/pull/940).
		if _, ok := body["default"].(string); !ok {
			return nil, errf(400, "InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body")
		}
	default:
		return nil, errf(400, "InvalidParameter", "Invalid parameter: MessageStructure")
	}
	id := a.newUUID()
	a.messages = append(a.messages, Message{TopicArn: t.arn, MessageID: id, Subject: req.p.str("Subject"), Message: msg,
		MessageStructure: structure, Caller: req.caller})
	return &publishResult{MessageID: id}, nil
}

// checkSubject: "Subjects must be UTF-8 text with no line breaks or control characters, and less than 100
// characters long" (API_Publish; 100 itself is accepted).
func checkSubject(s string) *apiError {
	bad := s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 100
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			bad = true // line breaks and control characters
		}
	}
	if bad {
		return errf(400, "InvalidParameter", "Invalid parameter: Subject")
	}
	return nil
}

func (a *Account) newUUID() string {
	x, y := a.ids.Uint64(), a.ids.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", x>>32, (x>>16)&0xffff, x&0xfff, 0x8000|(y>>48)&0x3fff, y&0xffffffffffff)
}
