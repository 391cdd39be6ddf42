-- expect: tests/specs/batchnorm_outside_net.lua:2: this layer has parameters; use it inside a net
local y = batchnorm {} (data.images)
