-- expect: tests/specs/memory_bomb.lua: the spec ran out of its memory budget
local s = "x"
while true do s = s .. s end
