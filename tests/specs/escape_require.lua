-- expect: tests/specs/escape_require.lua:2: attempt to call a nil value (global 'require')
local ffi = require "ffi"
