-- expect: tests/specs/escape_load.lua:2: attempt to call a nil value (global 'load')
local f = load("return 1")
