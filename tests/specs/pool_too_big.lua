-- expect: tests/specs/pool_too_big.lua:4: maxpool2d: a 5x5 window does not fit a 4x4 input with padding "valid"
local D = net "d" {
  input {1, 4, 4},
  maxpool2d {5},
  flatten, dense(1),
}
