// Package sim is an embedded AWS simulator: it serves the EC2, SNS, IAM, Auto Scaling and ELBv2 Query APIs and
// S3 (REST-XML, path-style) over HTTP on loopback for the real aws-sdk-go-v2 clients, on a simulated account seeded from a Scenario. It models the AWS
// behaviours the isolation workflow depends on (profile association states, security group visibility and
// name uniqueness, replace semantics of ENI groups, DryRun, throttling, snapshots) and injects faults
// (latency, token-bucket throttling, errors). Every call is recorded.
package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
)

// Call is one request received by the server.
type Call struct {
	Seq     int
	Service string // SigV4 signing name: "ec2" | "sns" | "s3" | "iam" | "autoscaling" | "elasticloadbalancing"
	Action  string // e.g. "ModifyNetworkInterfaceAttribute"
	// Params are the form parameters as sent; for S3 (REST) the URL query plus Bucket, Key and the conditional
	// headers (If-Match, If-None-Match) under their header names.
	Params     url.Values
	Caller     string // access key id of the signer
	Mutating   bool   // false for Describe*/Get*/List*; DryRun calls count as not mutating
	DryRun     bool
	ErrorCode  string // "" on success
	HTTPStatus int
	RequestID  string
	Start, End time.Time
	// TimedOut: a timeout fault withheld the answer (HTTPStatus 0). ErrorCode is then the action's own outcome
	// when the fault was applied ("" if it succeeded), else RequestTimeout (nothing was done).
	TimedOut bool
}

// Message is one message published to SNS.
type Message struct {
	TopicArn, MessageID, Subject, Message, MessageStructure string
	Caller                                                  string
}

// Server serves a simulated account on 127.0.0.1.
type Server struct {
	mu         sync.Mutex // guards acct, faults state, calls
	acct       *Account
	clock      Clock
	faults     *faultState
	calls      []Call
	seq        int
	reqIDs     uint64
	ln         net.Listener
	transports []*http.Transport // of the configs AWSConfig made
	srv        *http.Server
	url        string
	closing    sync.Once
	inProcess  bool         // WithInProcess: no listener
	sink       func(Call)   // WithCallSink: calls handed over instead of kept
	states     *statesState // Step Functions (states.go); guarded by mu
}

// Option configures a Server.
type Option func(*Server)

// WithClock routes all of the server's time through c (default RealClock).
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithCallSink hands each answered call to sink (under the server's lock: it must not call the server) instead
// of keeping it for Calls: a storm of 10,000 isolations makes half a million calls, too many to keep whole.
func WithCallSink(sink func(Call)) Option { return func(s *Server) { s.sink = sink } }

// Start serves the simulated account on 127.0.0.1:<free port>. Close stops it.
func Start(sc Scenario, opts ...Option) (*Server, error) {
	s := &Server{clock: RealClock{}}
	for _, o := range opts {
		o(s)
	}
	acct, err := newAccount(sc, s.clock)
	if err != nil {
		return nil, fmt.Errorf("sim: scenario: %w", err)
	}
	s.acct = acct
	s.faults = newFaultState(acct.Faults)
	if s.inProcess {
		// An IP host, so that the S3 client addresses buckets path-style as with a loopback server.
		s.url = "http://127.0.0.1:1"
		return s, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: listen: %w", err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Close stops the server at once: listener and connections are closed, including connections a client opened
// and never used (which a graceful Shutdown would wait 5 s for). Requests still running get a closed connection.
func (s *Server) Close() {
	s.closing.Do(func() {
		if s.srv == nil {
			return
		}
		_ = s.srv.Close()
		s.mu.Lock()
		for _, tr := range s.transports {
			tr.CloseIdleConnections()
		}
		s.mu.Unlock()
	})
}

// Region is the account's region.
func (s *Server) Region() string { return s.acct.region }

// AccountID is the account's id.
func (s *Server) AccountID() string { return s.acct.id }

// AWSConfig returns an aws.Config whose clients reach this server: BaseEndpoint = URL, the scenario's region,
// static credentials whose access key id is caller (recorded as Call.Caller), and the product retry policy with
// millisecond backoff.
func (s *Server) AWSConfig(caller string) aws.Config {
	if caller == "" {
		caller = "AKIDSIMULATOR"
	}
	// Each config has its own connection pool, closed with the server.
	var tr http.RoundTripper = inProcessTransport{s}
	if !s.inProcess {
		t := http.DefaultTransport.(*http.Transport).Clone()
		s.mu.Lock()
		s.transports = append(s.transports, t)
		s.mu.Unlock()
		tr = t
	}
	return aws.Config{
		Region:       s.acct.region,
		BaseEndpoint: aws.String(s.url),
		Credentials:  credentials.NewStaticCredentialsProvider(caller, "simulated-secret", ""),
		Retryer: func() aws.Retryer {
			return awscfg.Retryer(awscfg.FullJitter{Base: time.Millisecond, Max: 20 * time.Millisecond})
		},
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

// Calls returns every call answered so far, in arrival order (Seq), including injected faults and DryRun calls.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = cloneValues(c.Params)
		out[i] = c
	}
	return out
}

// ResetCalls forgets the calls received so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Messages returns every message published to SNS so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acct.messages)
}

// Update runs fn with the account locked: tests use it to change state mid-run (terminate an instance, detach
// an ENI, delete a group) or the faults (a.Faults).
func (s *Server) Update(fn func(a *Account)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acct.tick()
	before := cloneFaults(s.acct.Faults)
	fn(s.acct)
	if !reflect.DeepEqual(before, s.acct.Faults) {
		s.faults = newFaultState(s.acct.Faults)
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// request is one parsed API request.
type request struct {
	service, action, caller string
	params                  url.Values
	p                       *node
	requestID               string
	dryRun                  bool
	// REST (S3) requests only.
	method, bucket, key string
	header              http.Header
	body                []byte
}

// answer is what a handler produced: a payload to serialise, or an API error. A timeout fault withholds it
// (timeout > 0); applied says whether the action was carried out first.
type answer struct {
	payload any
	err     *apiError
	timeout time.Duration
	applied bool
}

// apiError is an AWS error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
	// S3 only: extra elements of the <Error> document (Key, BucketName, Condition...) and headers.
	fields [][2]string
	header http.Header
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ServeHTTP handles one Query API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.clock.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	service, caller := parseAuthorization(r.Header.Get("Authorization"))
	if service == "states" {
		s.serveStates(w, r, body, caller, start)
		return
	}
	var req *request
	switch service {
	case "s3":
		req = s3Request(r, body)
	case "sqs":
		req = sqsRequest(r, body)
	default:
		params, err := url.ParseQuery(string(body))
		if err != nil {
			params = url.Values{}
		}
		for k, vs := range r.URL.Query() { // GET-style query requests
			params[k] = append(params[k], vs...)
		}
		req = &request{params: params, p: parseParams(params), action: params.Get("Action")}
	}
	params := req.params
	req.service, req.caller = service, caller
	if req.service == "" {
		// Unsigned request: guess from the API version.
		req.service = "ec2"
		if svc, ok := queryVersions[params.Get("Version")]; ok {
			req.service = svc
		}
	}
	req.dryRun = req.service == "ec2" && strings.EqualFold(params.Get("DryRun"), "true")

	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.reqIDs++
	req.requestID = requestID(s.reqIDs)
	latency := s.acct.Faults.Latency.Default
	if d, ok := s.acct.Faults.Latency.Actions[req.action]; ok {
		latency = d
	}
	s.mu.Unlock()

	if latency > 0 {
		s.clock.Sleep(latency)
	}

	s.mu.Lock()
	ans := s.handle(req)
	status, header, out := s.render(req, ans)
	call := Call{Seq: seq, Service: req.service, Action: req.action, Params: cloneValues(params), Caller: req.caller,
		Mutating: isMutating(req.service, req.action) && !req.dryRun, DryRun: req.dryRun, HTTPStatus: status,
		RequestID: req.requestID, Start: start, End: s.clock.Now()}
	if ans.err != nil {
		call.ErrorCode = ans.err.Code
	}
	if ans.timeout > 0 {
		call.TimedOut, call.HTTPStatus = true, 0
		if !ans.applied {
			call.ErrorCode = "RequestTimeout"
		}
	}
	if s.sink != nil {
		s.sink(call)
		s.mu.Unlock()
	} else {
		// Keep arrival order: a call that arrived earlier may finish later (latency, scheduling).
		i := len(s.calls)
		for i > 0 && s.calls[i-1].Seq > call.Seq {
			i--
		}
		s.calls = slices.Insert(s.calls, i, call)
		s.mu.Unlock()
	}

	if ans.timeout > 0 {
		s.withhold(r.Context(), ans.timeout)
		// Close the connection without an answer (net/http does so quietly for this panic).
		panic(http.ErrAbortHandler)
	}

	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", req.requestID)
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out)
	}
}

// withhold holds a timed-out request for d of the server's time, or until the client gives up.
func (s *Server) withhold(ctx context.Context, d time.Duration) {
	if _, ok := s.clock.(RealClock); ok {
		// A timer stops with the request: no goroutine outlives it (a testing/synctest bubble requires that).
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return
	}
	slept := make(chan struct{})
	go func() {
		s.clock.Sleep(d)
		close(slept)
	}()
	select {
	case <-slept:
	case <-ctx.Done():
	}
}

// handle runs faults then the action. Called with s.mu held.
func (s *Server) handle(req *request) answer {
	a := s.acct
	a.tick()
	if req.action == "" {
		return answer{err: errf(400, "MissingAction", "The request must contain the parameter Action.")}
	}
	inj := s.faults.inject(a.Faults, req, s.clock.Now())
	switch {
	case inj == nil:
		return s.act(req)
	case inj.timeout == 0:
		return answer{err: inj.err}
	case inj.applied:
		ans := s.act(req)
		ans.timeout, ans.applied = inj.timeout, true
		return ans
	default:
		return answer{timeout: inj.timeout}
	}
}

// act runs the action. Called with s.mu held.
func (s *Server) act(req *request) answer {
	a := s.acct
	var h handler
	switch req.service {
	case "ec2":
		h = ec2Handlers[req.action]
	case "sns":
		h = snsHandlers[req.action]
	case "s3":
		h = s3Handlers[req.action]
	case "iam":
		h = iamHandlers[req.action]
	case "autoscaling":
		h = autoscalingHandlers[req.action]
	case "elasticloadbalancing":
		h = elbv2Handlers[req.action]
	case "sts":
		h = stsHandlers[req.action]
	case "sqs":
		h = sqsHandlers[req.action]
	default:
		return answer{err: errf(400, "InvalidAction", "The service %q is not simulated.", req.service)}
	}
	if h == nil && req.service == "s3" {
		return answer{err: s3err(501, "NotImplemented", "A header you provided implies functionality that is not implemented")}
	}
	if h == nil {
		return answer{err: errf(400, "InvalidAction", "The action %s is not valid for this web service.", req.action)}
	}
	if err := a.denied(req); err != nil {
		return answer{err: err}
	}
	payload, err := h(a, req)
	if err != nil {
		return answer{err: err}
	}
	if req.dryRun {
		// The action validated; a DryRun changes nothing (handlers check req.dryRun before mutating). EC2 answers
		// DryRunOperation with HTTP 412 (github.com/aws/karpenter-provider-aws/issues/8015 sees 412s for
		// dry-run CreateFleet/RunInstances; API error codes: "the request would have succeeded, but the DryRun
		// parameter was used").
		return answer{err: errf(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")}
	}
	return answer{payload: payload}
}

// queryVersions are the API versions of the Query services other than EC2.
var queryVersions = map[string]string{"2010-03-31": "sns", "2010-05-08": "iam", "2011-01-01": "autoscaling",
	"2015-12-01": "elasticloadbalancing", "2011-06-15": "sts"}

// handler runs one action on the account. A mutating handler must validate everything first and return before
// changing anything when req.dryRun is set.
type handler func(a *Account, req *request) (any, *apiError)

// parseAuthorization extracts the service and access key id from a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, SignedHeaders=..., Signature=...".
func parseAuthorization(h string) (service, caller string) {
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return "", ""
	}
	cred := h[i+len("Credential="):]
	if j := strings.IndexAny(cred, ", "); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return "", ""
	}
	return parts[3], parts[0]
}

func requestID(n uint64) string {
	return fmt.Sprintf("5e1a0000-%04x-4%03x-8%03x-%012x", (n>>48)&0xffff, (n>>36)&0xfff, (n>>24)&0xfff, n&0xffffffffffff)
}

// isMutating tells whether an action changes state (EC2's throttling categories and Call.Mutating).
func isMutating(service, action string) bool {
	for _, p := range []string{"Describe", "Get", "List", "Search", "Head"} {
		if strings.HasPrefix(action, p) {
			return false
		}
	}
	return action != ""
}
