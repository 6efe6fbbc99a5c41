// Package moto runs the product against moto's server mode (moto_server), an AWS emulator written by others:
// our own simulator (internal/sim) can share our misunderstandings of AWS, moto does not. It starts moto_server
// on a free loopback port, seeds an account through the real AWS SDK, and checks the state an isolation must
// leave. The places where moto differs from AWS, and how the tests deal with each, are in docs/moto.md.
package moto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
)

// Version is the moto release the tests and docs/moto.md are written against.
const Version = "5.2.1"

// Account and region of moto's default account: every request with unknown credentials acts in it.
const (
	AccountID = "123456789012"
	Region    = "us-east-1"
)

// Dummy credentials: moto accepts any until IAM enforcement is switched on (EnforceIAM).
const (
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// ErrNotInstalled is returned by Start when moto_server is not on PATH.
var ErrNotInstalled = errors.New("moto_server is not installed (it comes with `pip install 'moto[server]'`)")

// Binary is the moto_server executable: $MOTO_SERVER, else moto_server on PATH.
func Binary() (string, error) {
	if p := os.Getenv("MOTO_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("moto_server")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Server is a running moto_server.
type Server struct {
	cmd      *exec.Cmd
	endpoint string
	out      *syncBuffer
	exited   chan struct{}
	http     *http.Client
	stopOnce sync.Once
}

// Start runs moto_server on a free loopback port and returns once it answers. Close stops it.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	// Another process may take the port between our probe and moto's bind: try a few ports.
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, bin, port)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func start(ctx context.Context, bin string, port int) (*Server, error) {
	s := &Server{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		out:      &syncBuffer{},
		exited:   make(chan struct{}),
		http:     &http.Client{Timeout: 30 * time.Second},
	}
	s.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Its own process group: moto_server may be a wrapper script (pyenv shim) around the Python process. Pdeathsig:
	// a test binary that dies without Close (a panic, a timeout) takes moto with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if s.ready(ctx) {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("moto_server exited before answering on %s:\n%s", s.endpoint, s.out.tail(2000))
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		case <-deadline.C:
			s.Close()
			return nil, fmt.Errorf("moto_server did not answer on %s within 30s:\n%s", s.endpoint, s.out.tail(2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+"/moto-api/", nil)
	if err != nil {
		return false
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Endpoint is the server's URL (http://127.0.0.1:PORT): the AWS_ENDPOINT_URL of every service.
func (s *Server) Endpoint() string { return s.endpoint }

// Output is what moto_server printed (its request log and tracebacks), for a failing test's message.
func (s *Server) Output() string { return s.out.tail(8000) }

// Close stops the server: SIGTERM to its process group, SIGKILL after 5 seconds.
func (s *Server) Close() {
	s.stopOnce.Do(func() {
		pgid := -s.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// Reset empties every service of the account (moto's /moto-api/reset).
func (s *Server) Reset(ctx context.Context) error {
	return s.post(ctx, "/moto-api/reset", "")
}

// EnforceIAM makes moto authenticate every following request and authorize it against the caller's IAM
// policies, as AWS does; restore switches it off again. Only access keys created through moto's IAM are then
// accepted. It is server-wide: tests using it must not run in parallel with others on the same server.
func (s *Server) EnforceIAM(ctx context.Context) (restore func() error, err error) {
	if err := s.post(ctx, "/moto-api/reset-auth", "0"); err != nil {
		return nil, err
	}
	return func() error { return s.post(context.Background(), "/moto-api/reset-auth", "inf") }, nil
}

func (s *Server) post(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	// Not a form: moto reads the raw body.
	req.Header.Set("Content-Type", "text/plain")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("moto %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto %s: HTTP %d: %s", path, resp.StatusCode, msg)
	}
	return nil
}

// Config is an AWS configuration that reaches the server with the given credentials (AccessKeyID and
// SecretAccessKey when empty), independent of the environment and ~/.aws, with the product's retry policy at
// millisecond backoff.
func (s *Server) Config(accessKey, secretKey string) aws.Config {
	return ConfigFor(s.endpoint, accessKey, secretKey)
}

// ConfigFor is Config for a server started elsewhere (the CI script's).
func ConfigFor(endpoint, accessKey, secretKey string) aws.Config {
	if accessKey == "" {
		accessKey, secretKey = AccessKeyID, SecretAccessKey
	}
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		Retryer: func() aws.Retryer {
			return awscfg.Retryer(awscfg.FullJitter{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond})
		},
		HTTPClient: &http.Client{Timeout: 60 * time.Second},
	}
}

// syncBuffer keeps moto's output for error messages; moto writes a line per request, so only the tail is kept.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxOutput = 1 << 20

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxOutput {
		keep := b.buf.Bytes()[b.buf.Len()-maxOutput/2:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
