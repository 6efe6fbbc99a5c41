package sim

import "encoding/json"

// ApplyTagEvent makes on the account the tag change an EventBridge "Tag Change on Resource" event reports (its
// detail's changed keys, with the values of detail.tags), as the responder's tag that produced the event did:
// the workflows act on the instance's current tag, not on the event's. An event it cannot read changes nothing
// (the workflow refuses it on its own).
func (s *Server) ApplyTagEvent(event []byte) {
	var ev struct {
		Resources []string `json:"resources"`
		Detail    struct {
			ChangedTagKeys []string          `json:"changed-tag-keys"`
			Tags           map[string]string `json:"tags"`
		} `json:"detail"`
	}
	if json.Unmarshal(event, &ev) != nil || len(ev.Resources) != 1 {
		return
	}
	id := ev.Resources[0]
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			id = id[i+1:]
			break
		}
	}
	tags := map[string]string{}
	for _, k := range ev.Detail.ChangedTagKeys {
		if v, ok := ev.Detail.Tags[k]; ok {
			tags[k] = v
		}
	}
	if len(tags) == 0 {
		return
	}
	s.Update(func(a *Account) { a.setTags(id, tags) })
}
