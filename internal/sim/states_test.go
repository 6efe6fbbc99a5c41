package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// The Step Functions calls the reconciler makes, through the real sfn client: a start runs the registered state
// machine in the background (RUNNING until it ends), the same name and input is idempotent while open, another
// input or a closed execution is ExecutionAlreadyExists, ListExecutions filters by status and pages.
func TestStepFunctionsExecutions(t *testing.T) {
	srv, err := Start(baseScenario())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	release := make(chan struct{})
	srv.SetStateMachine("iso", func(ctx context.Context, name string, input []byte) string {
		<-release
		return "SUCCEEDED"
	})
	ctx := context.Background()
	c := sfn.NewFromConfig(srv.AWSConfig("reconciler"))
	arn := srv.StateMachineARN("iso")
	for i := range 3 {
		if _, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn),
			Name: aws.String(fmt.Sprintf("e-%d", i)), Input: aws.String(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("e-1"), Input: aws.String(`{"n":1}`)})
	if err != nil || aws.ToString(again.ExecutionArn) != executionARN(arn, "e-1") {
		t.Fatalf("same name and input while running: %v %v, want the same execution", again, err)
	}
	var exists *sfntypes.ExecutionAlreadyExists
	if _, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("e-1"), Input: aws.String(`{"n":2}`)}); !errors.As(err, &exists) {
		t.Fatalf("same name, other input: %v, want ExecutionAlreadyExists", err)
	}
	var names []string
	p := sfn.NewListExecutionsPaginator(c, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning, MaxResults: 2})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page.Executions {
			names = append(names, aws.ToString(e.Name))
		}
	}
	if fmt.Sprint(names) != "[e-2 e-1 e-0]" || pages != 2 {
		t.Errorf("running executions %v in %d pages, want [e-2 e-1 e-0] (most recent first) in 2", names, pages)
	}
	close(release)
	srv.WaitExecutions()
	d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(executionARN(arn, "e-0"))})
	if err != nil || d.Status != sfntypes.ExecutionStatusSucceeded || aws.ToString(d.Input) != `{"n":1}` || d.StopDate == nil {
		t.Errorf("describe e-0: %+v %v, want SUCCEEDED with its input and a stop date", d, err)
	}
	if _, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("e-0"), Input: aws.String(`{"n":1}`)}); !errors.As(err, &exists) {
		t.Errorf("the name of a closed execution: %v, want ExecutionAlreadyExists", err)
	}
	var bad *sfntypes.InvalidName
	if _, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("a/b")}); !errors.As(err, &bad) {
		t.Errorf("name a/b: %v, want InvalidName", err)
	}
	var none *sfntypes.StateMachineDoesNotExist
	if _, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(srv.StateMachineARN("other"))}); !errors.As(err, &none) {
		t.Errorf("unknown machine: %v, want StateMachineDoesNotExist", err)
	}
}
