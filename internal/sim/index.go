package sim

import (
	"slices"
	"strings"
)

// The indexes below let a Describe call narrowed to a few resources (an id, an exact tag value) answer without
// scanning every row: in a 10,000-instance storm those scans, under the account's lock, were most of the
// simulator's CPU. They narrow only; each candidate still goes through the call's filters, so an answer is the
// one a full scan gives, in the same order.

type tagPair struct{ key, value string }

// rows returns the ids of the table's rows among ids, once each, in insertion order (a full scan's order).
func (t *table[T]) rows(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if _, ok := t.m[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(x, y string) int { return t.pos[x] - t.pos[y] })
	return out
}

// exactValues returns the values of the filter named name when there is one and none of its values is a pattern.
func exactValues(fs []filter, name string) ([]string, bool) {
	for _, f := range fs {
		if f.name == name && !slices.ContainsFunc(f.values, func(v string) bool { return strings.ContainsAny(v, `*?\`) }) {
			return f.values, true
		}
	}
	return nil, false
}

// taggedIDs returns the ids of the resources carrying a tag value an exact tag:KEY filter asks for (the smallest
// such set), and false when no filter is one.
func (a *Account) taggedIDs(fs []filter) ([]string, bool) {
	var best []string
	found := false
	for _, f := range fs {
		key, ok := strings.CutPrefix(f.name, "tag:")
		if !ok {
			continue
		}
		vals, ok := exactValues([]filter{f}, f.name)
		if !ok {
			continue
		}
		var ids []string
		for _, v := range vals {
			for id := range a.tagged[tagPair{key, v}] {
				ids = append(ids, id)
			}
		}
		if !found || len(ids) < len(best) {
			best, found = ids, true
		}
	}
	return best, found
}

func (a *Account) putAssociation(as *association) {
	a.associations.put(as.id, as)
	if !slices.Contains(a.assocOf[as.instanceID], as.id) {
		a.assocOf[as.instanceID] = append(a.assocOf[as.instanceID], as.id)
	}
}

func (a *Account) delAssociation(id string) {
	as := a.associations.get(id)
	if as == nil {
		return
	}
	a.associations.del(id)
	unlist(a.assocOf, as.instanceID, id)
}

// listed returns the ids an instance index (assocOf, enisOf) lists for the instances named.
func listed(index map[string][]string, instances []string) []string {
	var ids []string
	for _, inst := range instances {
		ids = append(ids, index[inst]...)
	}
	return ids
}

// unlist removes id from the instance's list in an instance index.
func unlist(index map[string][]string, instance, id string) {
	index[instance] = slices.DeleteFunc(index[instance], func(k string) bool { return k == id })
	if len(index[instance]) == 0 {
		delete(index, instance)
	}
}

// setAttachment attaches e as att says, or detaches it (nil): the only writer of an ENI's attachment.
func (a *Account) setAttachment(e *eni, att *eniAttachment) {
	if e.att != nil {
		unlist(a.enisOf, e.att.instanceID, e.id)
	}
	e.att = att
	if att != nil {
		a.enisOf[att.instanceID] = append(a.enisOf[att.instanceID], e.id)
	}
}
