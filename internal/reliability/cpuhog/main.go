// Command cpuhog keeps every CPU busy until it is killed or -for elapses. CI runs the reliability tests beside
// it: their clock only advances when their work waits (testing/synctest), so CPU starvation may slow them down
// but must not change what they find.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	d := flag.Duration("for", time.Hour, "how long to keep the CPUs busy")
	n := flag.Int("n", runtime.NumCPU(), "busy goroutines (one per CPU by default)")
	flag.Parse()
	var spins atomic.Int64
	for range *n {
		go func() {
			for {
				spins.Add(1)
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "cpuhog: %d busy goroutines for %s (pid %d)\n", *n, *d, os.Getpid())
	time.Sleep(*d)
}
