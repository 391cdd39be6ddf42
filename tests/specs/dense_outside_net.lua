-- expect: tests/specs/dense_outside_net.lua:2: this layer has parameters; use it inside a net
local h = dense(10)(data.images)
