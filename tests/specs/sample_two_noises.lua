-- expect: tests/specs/sample_two_noises.lua:6: model: sample must draw from one noise.normal input (and may read data.labels); this one reads 2 noise.normal and 0 other inputs
local G = net "g" { input {20}, dense(784), reshape {1, 28, 28} }
local D = net "d" { input {1, 28, 28}, flatten, dense(1) }
local fake = G(concat(noise.normal {10}, noise.normal {10}))
local x = data.images
return model "m" {
  steps = { { name = "d", update = D, optimizer = sgd {lr = 0.1}, loss = bce_logits(D(x), 1) + bce_logits(D(fake), 0) },
            { name = "g", update = G, optimizer = sgd {lr = 0.1}, loss = bce_logits(D(fake), 1) } },
  sample = fake,
}
