package sim

import (
	"errors"
	"net/http"
	"net/http/httptest"
)

// WithInProcess serves without a network: the clients of AWSConfig hand each request to the server's handler
// in their own goroutine, and an http.Client (its timeout, the SDK's retries) sees an ordinary answer or, for a
// withheld one, a broken connection. The bytes are the same AWS wire protocols as over loopback TCP. A
// testing/synctest bubble needs it: a goroutine blocked on a socket is not durably blocked, so the bubble's
// virtual clock would never advance.
func WithInProcess() Option { return func(s *Server) { s.inProcess = true } }

// errNoAnswer is what a client sees of a connection closed without an answer.
var errNoAnswer = errors.New("sim: connection closed without an answer")

// inProcessTransport calls the server's handler directly.
type inProcessTransport struct{ s *Server }

func (t inProcessTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	defer func() {
		_ = in.Body.Close()
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler {
				panic(r)
			}
			resp, err = nil, errNoAnswer
		}
	}()
	rec := httptest.NewRecorder()
	t.s.ServeHTTP(rec, in)
	resp = rec.Result()
	resp.Request = req
	return resp, nil
}
