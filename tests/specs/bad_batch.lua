-- expect: tests/specs/bad_batch.lua:3: model: batch must be a positive integer
local D = net "discriminator" { input {1, 28, 28}, flatten, dense(1) }
return model "bad" { batch = 0,
  steps = { { name = "d", update = D, optimizer = adam {}, loss = bce_logits(D(data.images), 1) } } }
