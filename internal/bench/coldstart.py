# A Python 3 Lambda function started the way the article's is: it imports boto3 and builds its clients (ec2, sns)
# at init, then serves the Lambda Runtime API loop itself with urllib (what the managed Python runtime does for a
# handler). Its handler describes the instance the event names, as the article's first call does.
import json
import os
import urllib.request

import boto3

ec2 = boto3.client("ec2")
sns = boto3.client("sns")

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"


def handler(event):
    instance_id = event["resources"][0].rsplit("/", 1)[1]
    r = ec2.describe_instances(InstanceIds=[instance_id])
    inst = r["Reservations"][0]["Instances"][0]
    return {"instanceId": instance_id, "vpcId": inst.get("VpcId"), "state": inst["State"]["Name"]}


while True:
    with urllib.request.urlopen(API + "/next") as resp:
        request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(resp.read())
    try:
        body, url = json.dumps(handler(event)).encode(), API + "/" + request_id + "/response"
    except Exception as e:  # the runtime reports any handler error
        body = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}).encode()
        url = API + "/" + request_id + "/error"
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()
