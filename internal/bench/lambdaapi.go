package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RuntimeAPI is a loopback emulator of the Lambda Runtime API (2018-06-01) that serves one invocation: the first
// GET /runtime/invocation/next gets the event with the Lambda-Runtime-* headers, later ones wait (as an idle
// execution environment does) until the emulator closes. The first response, error or init error is reported.
type RuntimeAPI struct {
	ln        net.Listener
	srv       *http.Server
	event     []byte
	requestID string
	arn       string
	timeout   time.Duration

	mu     sync.Mutex
	served bool
	done   chan RuntimeResult
	closed chan struct{}
	once   sync.Once
}

// RuntimeResult is what the function posted first.
type RuntimeResult struct {
	// Kind is "response", "error" or "init-error".
	Kind string
	Body []byte
	// At is when the emulator received it.
	At time.Time
}

const runtimePrefix = "/2018-06-01/runtime/"

// StartRuntimeAPI serves event to the first invocation request, with the given function ARN and timeout
// (for Lambda-Runtime-Deadline-Ms).
func StartRuntimeAPI(event []byte, functionARN string, timeout time.Duration) (*RuntimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &RuntimeAPI{ln: ln, event: event, requestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", arn: functionARN,
		timeout: timeout, done: make(chan RuntimeResult, 1), closed: make(chan struct{})}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// Addr is host:port, the value of AWS_LAMBDA_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return a.ln.Addr().String() }

// Wait returns the function's first answer, or an error when ctx ends first.
func (a *RuntimeAPI) Wait(ctx context.Context) (RuntimeResult, error) {
	select {
	case r := <-a.done:
		return r, nil
	case <-ctx.Done():
		return RuntimeResult{}, ctx.Err()
	}
}

// Close stops the emulator; waiting requests end.
func (a *RuntimeAPI) Close() {
	a.once.Do(func() {
		close(a.closed)
		_ = a.srv.Close()
	})
}

func (a *RuntimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, runtimePrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		a.next(w, r)
	case r.Method == http.MethodPost && path == "init/error":
		a.post(w, r, "init-error")
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		if id != a.requestID || (kind != "response" && kind != "error") {
			writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown request id or path: "+path)
			return
		}
		a.post(w, r, kind)
	default:
		http.NotFound(w, r)
	}
}

func (a *RuntimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	first := !a.served
	a.served = true
	a.mu.Unlock()
	if !first {
		// No second invocation: wait like an idle environment until the emulator (or the client) goes away.
		select {
		case <-a.closed:
		case <-r.Context().Done():
		}
		return
	}
	deadline := time.Now().Add(a.timeout).UnixMilli()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", a.requestID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline, 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", a.arn)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.event)
}

func (a *RuntimeAPI) post(w http.ResponseWriter, r *http.Request, kind string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidBody", err.Error())
		return
	}
	at := time.Now()
	select {
	case a.done <- RuntimeResult{Kind: kind, Body: body, At: at}:
	default: // only the first answer is reported
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"errorType":"`+typ+`","errorMessage":`+strconv.Quote(msg)+`}`)
}
