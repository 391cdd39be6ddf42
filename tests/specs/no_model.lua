-- expect: tests/specs/no_model.lua:0: the spec must end with `return model "name" {...}`
local G = net "generator" { input {100}, dense(784) }
return G
