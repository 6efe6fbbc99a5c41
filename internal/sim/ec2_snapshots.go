package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// snapshotState is pending until Behaviour.SnapshotCompleteAfter has passed since the start, then completed.
func (a *Account) snapshotState(s *snapshot) (state, progress string, done time.Time) {
	after := a.Behaviour.SnapshotCompleteAfter
	el := a.clock.Now().Sub(s.start)
	if el >= after {
		return "completed", "100%", s.start.Add(after)
	}
	pct := 0
	if after > 0 {
		pct = int(99 * el / after)
	}
	return "pending", fmt.Sprintf("%d%%", pct), time.Time{}
}

// createSnapshots snapshots every EBS volume of an instance at one point in time: a crash-consistent
// multi-volume set (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html), all with
// the same start time.
func createSnapshots(a *Account, req *request) (any, *apiError) {
	id := req.p.str("InstanceSpecification", "InstanceId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter InstanceSpecification.InstanceId")
	}
	if err := lookupIDs([]string{id}, "i", "InvalidInstanceID", "instance", a.instanceExists); err != nil {
		return nil, err
	}
	inst := a.instances.get(id)
	if inst.state == "terminated" || inst.state == "shutting-down" {
		return nil, errf(400, "IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", id)
	}
	excludeBoot := false
	if req.p.has("InstanceSpecification", "ExcludeBootVolume") {
		var err *apiError
		if excludeBoot, err = parseBoolParam(req.p.str("InstanceSpecification", "ExcludeBootVolume"), "ExcludeBootVolume"); err != nil {
			return nil, err
		}
	}
	excluded := req.p.strs("InstanceSpecification", "ExcludeDataVolumeId")
	for _, v := range excluded {
		if !slices.ContainsFunc(inst.bdms, func(b *bdm) bool { return b.volumeID == v }) {
			return nil, errf(400, "InvalidParameterValue", "Volume %s is not attached to instance %s", v, id)
		}
	}
	copyTags := false
	switch req.p.str("CopyTagsFromSource") {
	case "":
	case "volume":
		copyTags = true
	default:
		return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter CopyTagsFromSource is invalid.", req.p.str("CopyTagsFromSource"))
	}
	for _, spec := range req.p.list("TagSpecification") {
		if rt := spec.str("ResourceType"); rt != "snapshot" {
			return nil, errf(400, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
	}
	specTags := req.p.tagSpecs("snapshot")
	var vols []*bdm
	for i, b := range inst.bdms {
		if (i == 0 && excludeBoot) || slices.Contains(excluded, b.volumeID) {
			continue
		}
		vols = append(vols, b)
	}
	if len(vols) == 0 {
		return nil, errf(400, "InvalidParameterValue", "The instance %s has no volumes to snapshot with these parameters.", id)
	}
	if req.dryRun {
		return nil, nil
	}
	start := a.clock.Now()
	out := &createSnapshotsOut{}
	for _, b := range vols {
		v := a.volumes.get(b.volumeID)
		s := &snapshot{id: a.newID("snap"), volumeID: b.volumeID, desc: req.p.str("Description"), size: v.size, start: start}
		a.snapshots.put(s.id, s)
		tags := map[string]string{}
		if copyTags {
			maps.Copy(tags, a.tags[v.id])
		}
		maps.Copy(tags, specTags)
		a.setTags(s.id, tags)
		out.Snapshots = append(out.Snapshots, xSnapshotInfo{SnapshotID: s.id, VolumeID: s.volumeID, State: "pending",
			StartTime: ts(start), Progress: "", OwnerID: a.id, VolumeSize: s.size, Description: s.desc,
			Tags: tagList(a.tags[s.id])})
	}
	return out, nil
}

func describeSnapshots(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("SnapshotId")
	for _, id := range ids {
		if a.snapshots.get(id) == nil {
			if !wellFormed("snap", id) {
				return nil, errf(400, "InvalidSnapshotID.Malformed", "Invalid id: %q (expecting \"snap-...\")", id)
			}
			return nil, errf(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
	}
	owners := req.p.strs("Owner")
	ours := len(owners) == 0 || slices.Contains(owners, "self") || slices.Contains(owners, a.id)
	if req.dryRun {
		return nil, nil
	}
	out := &describeSnapshotsOut{}
	if !ours {
		return out, nil
	}
	filters := req.p.filters() // parsed once, not per resource
	cands := a.snapshots.keys  // not all(): no copy of 10,000 rows per call
	if len(ids) > 0 {
		cands = a.snapshots.rows(ids)
	} else if tagged, ok := a.taggedIDs(filters); ok { // the snapshot step's call: its execution's tags
		cands = a.snapshots.rows(tagged)
	}
	for _, k := range cands {
		s := a.snapshots.m[k]
		state, progress, done := a.snapshotState(s)
		match, err := matchFilters(filters, a.tags[s.id], func(name string) ([]string, bool) {
			switch name {
			case "snapshot-id":
				return []string{s.id}, true
			case "volume-id":
				return []string{s.volumeID}, true
			case "status":
				return []string{state}, true
			case "owner-id":
				return []string{a.id}, true
			case "description":
				return []string{s.desc}, true
			case "progress":
				return []string{progress}, true
			case "volume-size":
				return []string{fmt.Sprint(s.size)}, true
			case "start-time":
				return []string{ts(s.start)}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if !match {
			continue
		}
		x := xSnapshot{SnapshotID: s.id, VolumeID: s.volumeID, Status: state, StartTime: ts(s.start), Progress: progress,
			OwnerID: a.id, VolumeSize: s.size, Description: s.desc, StorageTier: "standard", Tags: tagList(a.tags[s.id])}
		if !done.IsZero() {
			x.CompletionTime = ts(done)
		}
		out.Snapshots = append(out.Snapshots, x)
	}
	return out, nil
}

// deleteSnapshot deletes a snapshot for good (isolation cleanup, issue 15). EC2: "You can take a snapshot of a
// volume and delete it"; an unknown id is InvalidSnapshot.NotFound and a malformed one InvalidSnapshotID.Malformed
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSnapshot.html,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
func deleteSnapshot(a *Account, req *request) (any, *apiError) {
	id := req.p.str("SnapshotId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter snapshotId")
	}
	if !wellFormed("snap", id) {
		return nil, errf(400, "InvalidSnapshotID.Malformed", "Invalid id: %q (expecting \"snap-...\")", id)
	}
	if a.snapshots.get(id) == nil {
		return nil, errf(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	if req.dryRun {
		return nil, nil
	}
	a.snapshots.del(id)
	return ok(), nil
}
