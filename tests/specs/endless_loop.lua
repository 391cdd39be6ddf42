-- expect: tests/specs/endless_loop.lua:2: the spec ran past its instruction budget (an endless loop?)
while true do end
