package sim

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Amazon SQS (issue 16: the evidence queue that feeds the second stage), in the AWS JSON 1.0 protocol that
// aws-sdk-go-v2's sqs client speaks: POST /, X-Amz-Target AmazonSQS.<Action>, a JSON body; errors carry the
// error shape's name in __type and the Query API's code in the x-amzn-query-error header
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-faqs.html).
// Standard queues only: GetQueueUrl, SendMessage, ReceiveMessage, DeleteMessage.
//
// Differences from AWS (docs/moto.md): ReceiveMessage answers at once (no long polling: WaitTimeSeconds is
// accepted and ignored), returns the oldest visible messages first (a standard queue's order is best effort),
// and never leaves out a visible message (AWS's short poll samples a subset of its servers); there is no
// retention period, delay or dead-letter redrive.

// Queue is an SQS standard queue of the scenario.
type Queue struct {
	Name string `json:"name"`
	// VisibilityTimeout is the queue's default, in seconds (AWS's default: 30).
	VisibilityTimeout int `json:"visibilityTimeout,omitempty"`
}

type queue struct {
	name       string
	url        string
	visibility time.Duration
	messages   []*sqsMessage // in send order; deleted messages are removed
	sent       int
}

type sqsMessage struct {
	id, body, md5 string
	sentAt        time.Time
	visibleAt     time.Time // received and not deleted: hidden until then
	handle        string    // of the latest receive ("" before the first)
	receives      int
}

// Queue names: 1 to 80 alphanumerics, hyphens and underscores (CreateQueue, QueueName,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
var queueName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// QueueURL is the URL of the scenario's queue name: https://sqs.<region>.amazonaws.com/<account>/<name>, the
// format GetQueueUrl answers (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-queue-message-identifiers.html).
func (s *Server) QueueURL(name string) string { return queueURL(s.acct, name) }

func queueURL(a *Account, name string) string {
	host := "amazonaws.com"
	if Partition(a.region) == "aws-cn" {
		host = "amazonaws.com.cn"
	}
	return fmt.Sprintf("https://sqs.%s.%s/%s/%s", a.region, host, a.id, name)
}

// HasQueue reports whether the scenario declared the queue name.
func (s *Server) HasQueue(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct.queues[name] != nil
}

// QueueBodies returns the bodies of the messages in the queue name (visible or in flight, not deleted), in send
// order: what a test checks was queued.
func (s *Server) QueueBodies(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if q := s.acct.queues[name]; q != nil {
		for _, m := range q.messages {
			out = append(out, m.body)
		}
	}
	return out
}

func checkQueues(qs []Queue) error {
	seen := map[string]bool{}
	for _, q := range qs {
		if !queueName.MatchString(q.Name) || seen[q.Name] {
			return fmt.Errorf("queue %q: not a valid queue name, or repeated", q.Name)
		}
		if q.VisibilityTimeout < 0 || q.VisibilityTimeout > 43200 {
			return fmt.Errorf("queue %s: visibilityTimeout %d is not 0 to 43200 seconds", q.Name, q.VisibilityTimeout)
		}
		seen[q.Name] = true
	}
	return nil
}

func (a *Account) seedQueues(qs []Queue) {
	a.queues = map[string]*queue{}
	for _, q := range qs {
		vis := 30 * time.Second
		if q.VisibilityTimeout > 0 {
			vis = time.Duration(q.VisibilityTimeout) * time.Second
		}
		a.queues[q.Name] = &queue{name: q.Name, url: queueURL(a, q.Name), visibility: vis}
	}
}

// sqsRequest parses an AWS JSON 1.0 request: the action from X-Amz-Target, the body's scalar members as params
// (for faults and Call.Params), the whole body for the handler.
func sqsRequest(r *http.Request, body []byte) *request {
	req := &request{action: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."), params: url.Values{}, body: body}
	var in map[string]any
	if json.Unmarshal(body, &in) == nil {
		for k, v := range in {
			switch v := v.(type) {
			case string:
				req.params.Set(k, v)
			case float64:
				req.params.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
			}
		}
	}
	req.p = parseParams(req.params)
	return req
}

// sqsHandlers are the SQS actions served.
var sqsHandlers = map[string]handler{
	"GetQueueUrl":    getQueueURL,
	"SendMessage":    sendMessage,
	"ReceiveMessage": receiveMessage,
	"DeleteMessage":  deleteMessage,
}

// sqsErrors maps an error shape to the Query API code SQS sends in x-amzn-query-error (the SDK reports the
// latter as the error code: QueueDoesNotExist is AWS.SimpleQueueService.NonExistentQueue).
var sqsErrors = map[string]string{
	"QueueDoesNotExist":      "AWS.SimpleQueueService.NonExistentQueue",
	"ReceiptHandleIsInvalid": "ReceiptHandleIsInvalid",
	"InvalidMessageContents": "InvalidMessageContents",
	"InvalidParameterValue":  "InvalidParameterValue",
	"MissingParameter":       "MissingParameter",
}

func sqsErr(code, format string, args ...any) *apiError { return errf(400, code, format, args...) }

// queueOf finds the request's QueueUrl: the queue URL format above, of this account.
func (a *Account) queueOf(req *request) (*queue, *apiError) {
	u := req.params.Get("QueueUrl")
	if u == "" {
		return nil, sqsErr("MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	for _, q := range a.queues {
		if q.url == u {
			return q, nil
		}
	}
	return nil, sqsErr("QueueDoesNotExist", "The specified queue does not exist.")
}

// getQueueURL: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html.
func getQueueURL(a *Account, req *request) (any, *apiError) {
	name := req.params.Get("QueueName")
	if owner := req.params.Get("QueueOwnerAWSAccountId"); owner != "" && owner != a.id {
		return nil, sqsErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	q := a.queues[name]
	if q == nil {
		return nil, sqsErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	return map[string]any{"QueueUrl": q.url}, nil
}

// maxSQSMessageBytes is SendMessage's limit on MessageBody: 1 MiB, 1,048,576 bytes
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
const maxSQSMessageBytes = 1 << 20

// allowedInMessage: "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"; anything else is
// refused with InvalidMessageContents (same page).
func allowedInMessage(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// sendMessage: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html.
// MD5OfMessageBody is the MD5 of the body as sent (the SDK checks it).
func sendMessage(a *Account, req *request) (any, *apiError) {
	q, err := a.queueOf(req)
	if err != nil {
		return nil, err
	}
	body := req.params.Get("MessageBody")
	switch {
	case body == "":
		return nil, sqsErr("MissingParameter", "The request must contain the parameter MessageBody.")
	case len(body) > maxSQSMessageBytes:
		return nil, sqsErr("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", maxSQSMessageBytes)
	case !utf8.ValidString(body) || strings.IndexFunc(body, func(r rune) bool { return !allowedInMessage(r) }) >= 0:
		return nil, sqsErr("InvalidMessageContents", "Invalid characters found.")
	}
	q.sent++
	sum := md5.Sum([]byte(body))
	m := &sqsMessage{id: messageID(a, q), body: body, md5: hex.EncodeToString(sum[:]), sentAt: a.clock.Now()}
	q.messages = append(q.messages, m)
	return map[string]any{"MessageId": m.id, "MD5OfMessageBody": m.md5}, nil
}

func messageID(a *Account, q *queue) string {
	h := md5.Sum([]byte(fmt.Sprintf("%s/%d", q.url, q.sent)))
	x := hex.EncodeToString(h[:])
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

// receiveMessage: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html.
// MaxNumberOfMessages 1 to 10 (default 1); VisibilityTimeout 0 to 43200 seconds (default: the queue's) hides
// the messages returned; each receive gives a message a new receipt handle.
func receiveMessage(a *Account, req *request) (any, *apiError) {
	q, err := a.queueOf(req)
	if err != nil {
		return nil, err
	}
	limit := 1
	if v := req.params.Get("MaxNumberOfMessages"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > 10 {
			return nil, sqsErr("InvalidParameterValue", "Value %s for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", v)
		}
		limit = n
	}
	vis := q.visibility
	if v := req.params.Get("VisibilityTimeout"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 0 || n > 43200 {
			return nil, sqsErr("InvalidParameterValue", "Value %s for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", v)
		}
		vis = time.Duration(n) * time.Second
	}
	if v := req.params.Get("WaitTimeSeconds"); v != "" {
		if n, convErr := strconv.Atoi(v); convErr != nil || n < 0 || n > 20 {
			return nil, sqsErr("InvalidParameterValue", "Value %s for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", v)
		}
	}
	now := a.clock.Now()
	msgs := []map[string]any{}
	for _, m := range q.messages {
		if len(msgs) == limit {
			break
		}
		if now.Before(m.visibleAt) {
			continue
		}
		m.receives++
		m.visibleAt = now.Add(vis)
		m.handle = fmt.Sprintf("%s#%d", m.id, m.receives)
		msgs = append(msgs, map[string]any{"MessageId": m.id, "ReceiptHandle": m.handle, "MD5OfBody": m.md5, "Body": m.body,
			"Attributes": map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives),
				"SentTimestamp": strconv.FormatInt(m.sentAt.UnixMilli(), 10)}})
	}
	return map[string]any{"Messages": msgs}, nil
}

// deleteMessage: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html.
// The latest receipt handle of a message deletes it; an older one succeeds without deleting it ("you must
// provide the most recently received ReceiptHandle for the message (otherwise, the request succeeds, but the
// message will not be deleted)"); deleting a message already deleted succeeds; a malformed handle is
// ReceiptHandleIsInvalid.
func deleteMessage(a *Account, req *request) (any, *apiError) {
	q, err := a.queueOf(req)
	if err != nil {
		return nil, err
	}
	h := req.params.Get("ReceiptHandle")
	id, n, ok := strings.Cut(h, "#")
	if _, convErr := strconv.Atoi(n); !ok || convErr != nil {
		return nil, sqsErr("ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", h)
	}
	q.messages = slices.DeleteFunc(q.messages, func(m *sqsMessage) bool { return m.id == id && m.handle == h })
	return map[string]any{}, nil
}

// renderSQS serialises an SQS answer: JSON, errors as {"__type", "message"} with x-amzn-query-error.
func renderSQS(req *request, ans answer) (int, http.Header, []byte) {
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}}
	if ans.err != nil {
		status := ans.err.Status
		if status == 0 {
			status = 400
		}
		fault := "Sender"
		if status >= 500 {
			fault = "Receiver"
		}
		query := ans.err.Code
		if q, ok := sqsErrors[ans.err.Code]; ok {
			query = q
		}
		h.Set("X-Amzn-Query-Error", query+";"+fault)
		b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + ans.err.Code, "message": ans.err.Message})
		return status, h, b
	}
	payload := ans.payload
	if payload == nil {
		payload = map[string]any{}
	}
	b, _ := json.Marshal(payload)
	return 200, h, b
}
