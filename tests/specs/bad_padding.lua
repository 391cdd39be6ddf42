-- expect: tests/specs/bad_padding.lua:2: conv2d: padding must be "same" or "valid"
local layer = conv2d {8, 3, padding = "full"}
