package sim

var autoscalingHandlers = map[string]handler{}
