package sim

var elbv2Handlers = map[string]handler{}
