-- expect: tests/specs/sample_reads_images.lua:4: model: sample must not read data.images; it draws from noise (and data.labels)
local D = net "d" { input {1, 28, 28}, flatten, dense(1) }
local x = data.images
return model "m" {
  steps = { { name = "d", update = D, optimizer = sgd {lr = 0.1}, loss = bce_logits(D(x), 1) } },
  sample = relu(x),
}
