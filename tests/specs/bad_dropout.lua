-- expect: tests/specs/bad_dropout.lua:2: dropout: rate must be in [0, 1), as in dropout(0.3)
local layer = dropout(1.5)
