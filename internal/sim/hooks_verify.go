package sim

import "fmt"

// AddAssociation gives an instance one more profile association, in state (associating, associated or
// disassociating), beside those it has, and returns its id. A test hook for the states an in-flight change by
// another actor leaves for a moment (the isolation profile's association disassociating while someone else's
// profile is already associated): the API itself refuses a second association while one exists. Call inside
// Server.Update.
func (a *Account) AddAssociation(instanceID, profileName, state string) (string, error) {
	p := a.profiles.get(profileName)
	switch {
	case a.instances.get(instanceID) == nil:
		return "", fmt.Errorf("no instance %s", instanceID)
	case p == nil:
		return "", fmt.Errorf("no instance profile %s", profileName)
	case state != "associating" && state != "associated" && state != "disassociating":
		return "", fmt.Errorf("association state %q", state)
	}
	now := a.clock.Now()
	as := &association{id: a.newID("iip-assoc"), instanceID: instanceID, profile: p, state: state, changed: now, timestamp: now}
	a.putAssociation(as)
	a.pend(as)
	return as.id, nil
}
