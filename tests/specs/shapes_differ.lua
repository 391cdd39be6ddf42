-- expect: tests/specs/shapes_differ.lua:4: add: shapes [B,784] and [B,1,28,28] differ
local G = net "generator" { input {100}, dense(784), sigmoid }
local z = noise.normal {100}
local wrong = G(z) + data.images
return model "bad" { steps = { { name = "g", update = G, optimizer = adam {}, loss = mean(wrong) } } }
