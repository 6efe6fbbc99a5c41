package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// Scenarios of the bench are built from a base scenario (isolation simulate's default: its VPCs, groups,
// profiles, topic and whatever else the workflow needs) by adding copies of its first instance.

// benchSubnet is a large subnet the bench adds to the base instance's VPC for the storm's 1,000 instances.
const benchSubnet = "subnet-0be0c0000000000a1"

// addSubnet adds benchSubnet in the VPC and Availability Zone of the base instance's first subnet.
func addSubnet(sc *sim.Scenario) error {
	if len(sc.Instances) == 0 {
		return errors.New("the base scenario has no instance")
	}
	first := sc.Instances[0].SubnetID
	if len(sc.Instances[0].NetworkInterfaces) > 0 {
		first = sc.Instances[0].NetworkInterfaces[0].SubnetID
	}
	for _, s := range sc.Subnets {
		if s.ID == first {
			sub := sim.Subnet{ID: benchSubnet, VpcID: s.VpcID, AvailabilityZone: s.AvailabilityZone}
			// The upper half of the VPC's /16 (the base scenario's subnets are small ones at its start).
			var vpcCIDR string
			for _, v := range sc.VPCs {
				if v.ID == s.VpcID {
					vpcCIDR = v.CIDR
				}
			}
			var a, b int
			if _, err := fmt.Sscanf(vpcCIDR, "%d.%d.", &a, &b); err != nil {
				return fmt.Errorf("VPC %s CIDR %q: %w", s.VpcID, vpcCIDR, err)
			}
			sub.CIDR = fmt.Sprintf("%d.%d.128.0/17", a, b)
			sc.Subnets = append(sc.Subnets, sub)
			return nil
		}
	}
	return fmt.Errorf("subnet %s of the base instance not in the scenario", first)
}

// cloneInstance returns a copy of the base scenario's first instance numbered k: new instance, ENI and volume
// ids, keeping the first enis ENIs (0: all). With subnet set, every ENI moves to that subnet (one ENI only).
func cloneInstance(base sim.Instance, k, enis int, subnet string) sim.Instance {
	in := base
	in.ID = fmt.Sprintf("i-%017x", 0xbe0000000000+k)
	in.Tags = map[string]string{}
	for key, v := range base.Tags {
		in.Tags[key] = v
	}
	in.Tags["Name"] = fmt.Sprintf("bench-%d", k)
	in.NetworkInterfaces = nil
	for j, e := range base.NetworkInterfaces {
		if enis > 0 && j >= enis {
			break
		}
		e.ID = fmt.Sprintf("eni-%017x", 0xbe0000000000+k*16+j)
		e.PrivateIP = ""
		e.Groups = slices.Clone(e.Groups)
		if subnet != "" {
			e.SubnetID = subnet
		}
		in.NetworkInterfaces = append(in.NetworkInterfaces, e)
	}
	if subnet != "" {
		in.SubnetID = subnet
	} else if len(in.NetworkInterfaces) > 0 {
		in.SubnetID = in.NetworkInterfaces[0].SubnetID
	}
	in.Volumes = nil
	for j, v := range base.Volumes {
		v.ID = fmt.Sprintf("vol-%017x", 0xbe0000000000+k*16+j)
		v.Tags = nil
		in.Volumes = append(in.Volumes, v)
	}
	return in
}

// withLatency sets every answer's latency and turns throttling on or off; errors injected by the base are dropped.
func withLatency(sc sim.Scenario, latency time.Duration, buckets bool) sim.Scenario {
	sc.Faults = sim.Faults{Seed: sc.Faults.Seed, Latency: sim.Latency{Default: latency},
		TokenBuckets: sim.TokenBuckets{Enabled: buckets}}
	return sc
}

// tagEvent is the sample isolation event (events/isolate.json) naming instance id instead.
func tagEvent(sample []byte, sc sim.Scenario, id string) (json.RawMessage, error) {
	var ev map[string]any
	if err := json.Unmarshal(sample, &ev); err != nil {
		return nil, fmt.Errorf("sample event: %w", err)
	}
	ev["account"], ev["region"] = account(sc), region(sc)
	ev["resources"] = []string{fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", region(sc), account(sc), id)}
	return json.Marshal(ev)
}
