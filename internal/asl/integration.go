package asl

import "regexp"

// The one Step Functions service integration this engine runs (issue 16): Amazon SQS SendMessage, request and
// response ("Resource": "arn:<partition>:states:::sqs:sendMessage",
// https://docs.aws.amazon.com/step-functions/latest/dg/connect-sqs.html). The engine resolves its Parameters,
// serialises a MessageBody that is not a string to JSON text (Step Functions sends the object as the message's
// JSON), and hands the result to the Invoker with the resource, which performs the call and answers SendMessage's
// result ({"MessageId", "MD5OfMessageBody", ...}). Any other arn:…:states::: resource is refused by Load.
var (
	sqsSendMessage     = regexp.MustCompile(`^arn:aws[a-z-]*:states:::sqs:sendMessage$`)
	serviceIntegration = regexp.MustCompile(`^arn:[^:]*:states:::`)
)

// IsSQSSendMessage reports whether a Task's resource is the SQS SendMessage integration.
func IsSQSSendMessage(resource string) bool { return sqsSendMessage.MatchString(resource) }

// integrationParameters prepares a service integration's effective parameters for the Invoker.
func integrationParameters(resource string, params any) any {
	if !IsSQSSendMessage(resource) {
		return params
	}
	m, ok := params.(map[string]any)
	if !ok {
		return params
	}
	body, ok := m["MessageBody"]
	if _, isString := body.(string); !ok || isString {
		return params
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	out["MessageBody"] = string(encodeJSON(body))
	return out
}
