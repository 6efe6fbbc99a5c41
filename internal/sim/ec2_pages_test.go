package sim

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// DescribeInstances pages with MaxResults (5 to 1000) and a tag-key filter, as the reconciler lists the tagged
// instances; without MaxResults everything comes in one answer.
func TestDescribeInstancesPages(t *testing.T) {
	sc := baseScenario()
	for i := range 12 {
		sc.Instances = append(sc.Instances, Instance{ID: fmt.Sprintf("i-%017x", 0xf00+i), SubnetID: subA, Tags: map[string]string{"Isolate": "true"}})
	}
	srv, err := Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := ec2.NewFromConfig(srv.AWSConfig(""))
	ctx := context.Background()
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"Isolate"}}}})
	seen, pages := map[string]bool{}, 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				seen[aws.ToString(i.InstanceId)] = true
			}
		}
	}
	if len(seen) != 12 || pages != 3 {
		t.Errorf("%d tagged instances in %d pages, want 12 in 3", len(seen), pages)
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(2)}); err == nil {
		t.Error("MaxResults 2 accepted, want InvalidParameterValue")
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: []string{instWeb}}); err == nil {
		t.Error("MaxResults with instance ids accepted, want InvalidParameterCombination")
	}
}
