-- expect: tests/specs/bad_reshape.lua:4: reshape: cannot reshape [784] (784 values) to [1,28,27] (756 values)
local G = net "generator" {
  input {100}, dense(784), sigmoid,
  reshape {1, 28, 27},
}
return model "bad" { steps = {} }
