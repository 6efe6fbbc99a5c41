package sim

var iamHandlers = map[string]handler{}
