package preflight

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Event is the EventBridge event a responder's tag would have produced for the instance: what "Validate and
// record" validates when the workflow runs outside Step Functions.
func Event(id Identity, region, instanceID string, n Names, now time.Time) workflow.TagEvent {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return workflow.TagEvent{
		Version: "0", ID: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		DetailType: "Tag Change on Resource", Source: "aws.tag", Account: id.Account,
		Time: now.UTC().Format(time.RFC3339), Region: region,
		Resources: []string{fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", id.Partition, region, id.Account, instanceID)},
		Detail: workflow.TagDetail{
			ChangedTagKeys: []string{n.TagKey}, Service: "ec2", ResourceType: "instance", Version: 1,
			Tags: map[string]string{n.TagKey: n.TagValue},
		},
	}
}
