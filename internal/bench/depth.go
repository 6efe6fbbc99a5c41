package bench

import (
	"slices"
	"time"
)

// Span is one AWS call as the simulator recorded it: when it arrived and when it was answered.
type Span struct {
	Start, End time.Time
}

// RoundTrips is the number of sequential round trips up to and including spans[target]: the depth of a call is 1
// plus the greatest depth of the calls that were answered before it arrived (End <= Start), so calls made at once
// share a depth and a call that waited for another is one deeper. A retried call counts again. Only the spans for
// which on(i) holds are considered (the calls on the path to the target); target itself must be one of them.
// It returns 0 when target is out of range or not on the path.
func RoundTrips(spans []Span, target int, on func(i int) bool) int {
	if target < 0 || target >= len(spans) || !on(target) {
		return 0
	}
	var idx []int
	for i := range spans {
		if on(i) {
			idx = append(idx, i)
		}
	}
	// In order of arrival, every predecessor of a call (answered before it arrived) comes before it.
	slices.SortStableFunc(idx, func(a, b int) int { return spans[a].Start.Compare(spans[b].Start) })
	depth := map[int]int{}
	for k, i := range idx {
		d := 1
		for _, j := range idx[:k] {
			if !spans[j].End.After(spans[i].Start) && depth[j]+1 > d {
				d = depth[j] + 1
			}
		}
		depth[i] = d
		if i == target {
			return d
		}
	}
	return 0
}
