package secgroup

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// changes collects what a step changed, from concurrent calls, for the incident record and the notification.
type changes struct {
	step string
	now  func() time.Time
	mu   sync.Mutex
	l    []workflow.Change
}

func newChanges(step string, now func() time.Time) *changes { return &changes{step: step, now: now} }

func (c *changes) add(resource, action, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l = append(c.l, workflow.Change{At: c.now().UTC(), Step: c.step, Resource: resource, Action: action, Detail: detail})
}

// list returns the changes in the order they were made (concurrent calls by resource), nil when there are none.
func (c *changes) list() []workflow.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.l)
	slices.SortStableFunc(out, func(a, b workflow.Change) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Resource, b.Resource))
	})
	return out
}
