package crosscheck

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
)

// bridge serves Go Lambda handlers to the Node engine on loopback: POST /invoke/<function name> with the payload
// as body. It answers as Lambda's Invoke API does: 200 with the function's result, or, for a function error,
// 200 with header X-Amz-Function-Error and the error payload aws-lambda-go's runtime sends
// ({"errorMessage","errorType"}, errorType being the Go type name of the returned error). It deliberately does not
// reuse internal/runner's error conversion, so that the two sides share only the handlers.
type bridge struct {
	handlers map[string]lambda.Handler
	url      string
	srv      *http.Server

	mu       sync.Mutex
	problems []string // bridge failures (unknown function, panic): the test fails on any
}

func startBridge(t *testing.T, handlers map[string]lambda.Handler) *bridge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bridge: listen: %v", err)
	}
	b := &bridge{handlers: handlers, url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /invoke/{function}", b.invoke)
	b.srv = &http.Server{Handler: mux}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

func (b *bridge) problem(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.mu.Lock()
	b.problems = append(b.problems, msg)
	b.mu.Unlock()
	http.Error(w, msg, http.StatusInternalServerError)
}

func (b *bridge) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("function")
	h, ok := b.handlers[name]
	if !ok {
		b.problem(w, "no function %q", name)
		return
	}
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		b.problem(w, "%s: read payload: %v", name, err)
		return
	}
	out, err := b.call(r, h, payload)
	if p, ok := err.(panicked); ok {
		// A handler must never panic; Lambda would report it with a stack trace we do not reproduce.
		b.problem(w, "%s panicked: %v", name, p.v)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		out, _ = json.Marshal(errorPayload(err))
	}
	_, _ = w.Write(out)
}

type panicked struct{ v any }

func (panicked) Error() string { return "panic" }

func (b *bridge) call(r *http.Request, h lambda.Handler, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, panicked{p}
		}
	}()
	return h.Invoke(r.Context(), payload)
}

// errorPayload is the function error as aws-lambda-go's runtime reports it (lambda/errors.go,
// lambdaErrorResponse): an InvokeResponse_Error passes through; otherwise the message and the name of the
// error's type, without the pointer.
func errorPayload(err error) messages.InvokeResponse_Error {
	if ive, ok := err.(messages.InvokeResponse_Error); ok {
		return ive
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return messages.InvokeResponse_Error{Message: err.Error(), Type: t.Name()}
}

func (b *bridge) failures() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}
