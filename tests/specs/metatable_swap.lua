-- expect: tests/specs/metatable_swap.lua:2: attempt to index a boolean value
getmetatable(data.images).__add = nil
