-- expect: tests/specs/dense_unflattened.lua:5: dense: input has shape [1,28,28] per sample; flatten it first
local Z = 100
local D = net "discriminator" {
  input {1, 28, 28},
  dense(128), relu,
  dense(1),
}
return model "bad" {
  steps = { { name = "d", update = D, optimizer = adam {}, loss = bce_logits(D(data.images), 1) } },
}
