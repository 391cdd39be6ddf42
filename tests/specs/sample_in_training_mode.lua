-- expect: tests/specs/sample_in_training_mode.lua:7: model: sample runs in inference mode, but its expression applies a dropout in training mode (tests/specs/sample_in_training_mode.lua:2); give the net itself, as in `sample = G`
local G = net "g" { input {10}, dense(784), dropout(0.5), reshape {1, 28, 28} }
local D = net "d" { input {1, 28, 28}, flatten, dense(1) }
local z = noise.normal {10}
local x = data.images
local fake = G(z)
return model "m" {
  steps = { { name = "d", update = D, optimizer = sgd {lr = 0.1}, loss = bce_logits(D(x), 1) + bce_logits(D(fake), 0) },
            { name = "g", update = G, optimizer = sgd {lr = 0.1}, loss = bce_logits(D(fake), 1) } },
  sample = fake,
}
