// Command motoci is the Go side of .ci/moto.sh: it seeds a moto_server started by the script with an account to
// isolate, and afterwards checks through the SDK that the account is as a successful isolation leaves it.
//
//	motoci port                  print a free loopback port
//	motoci wait PORT PID         wait (30 s at most) until the moto_server of process PID answers on PORT
//	motoci seed FILE             seed the account at $AWS_ENDPOINT_URL, write what was created to FILE (JSON),
//	                             print it as shell assignments (instance=…, topic=…)
//	motoci verify FILE           check the isolation of the account FILE describes; exit 1 listing what is wrong
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "motoci:", err); return 2 }
	if len(args) == 0 {
		return fail(fmt.Errorf("usage: motoci port | seed FILE | verify FILE"))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if args[0] == "port" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		return 0
	}
	if args[0] == "wait" && len(args) == 3 {
		return wait(ctx, args[1], args[2])
	}
	if len(args) != 2 {
		return fail(fmt.Errorf("usage: motoci %s FILE", args[0]))
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return fail(fmt.Errorf("AWS_ENDPOINT_URL is not set (the moto_server URL)"))
	}
	c := moto.NewClients(moto.ConfigFor(endpoint, os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")))
	switch args[0] {
	case "seed":
		s, err := moto.Seed(ctx, c, moto.SeedOptions{Stack: true})
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(args[1], []byte(s.JSON()+"\n"), 0o644); err != nil {
			return fail(err)
		}
		fmt.Printf("instance=%s\ntopic=%s\nqueue=%s\n", s.InstanceID, s.TopicARN, s.QueueURL)
		return 0
	case "verify":
		data, err := os.ReadFile(args[1])
		if err != nil {
			return fail(err)
		}
		var s moto.Seeded
		if err := json.Unmarshal(data, &s); err != nil {
			return fail(fmt.Errorf("%s: %w", args[1], err))
		}
		problems, err := moto.Verify(ctx, c, s)
		if err != nil {
			return fail(err)
		}
		if len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "motoci: %s is not isolated as it must be:\n", s.InstanceID)
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			return 1
		}
		fmt.Printf("verified through the SDK: %s isolated (ENIs %v on their VPCs' isolation groups, isolation profile, %d snapshots, 1 notification in the queue)\n",
			s.InstanceID, s.ENIs, len(s.Volumes))
		return 0
	}
	return fail(fmt.Errorf("unknown command %q", args[0]))
}

// wait polls moto's API until it answers, the process exits, or 30 seconds pass.
func wait(ctx context.Context, port, pid string) int {
	p, err := strconv.Atoi(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "motoci: bad pid", pid)
		return 2
	}
	url := "http://127.0.0.1:" + port + "/moto-api/"
	client := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return 0
			}
		}
		if syscall.Kill(p, 0) != nil {
			return 1 // exited
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 1
}
