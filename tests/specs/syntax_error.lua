-- expect: tests/specs/syntax_error.lua:3:
local G = net "generator" { input {100}, dense(784) }
return model "bad" { steps = { { name = "g" update = G } } }
