-- The DCGAN of the seed articles, on 28x28 images scaled to [-1, 1].
--
-- Change from the seed: its generator ended at 16x16 while its discriminator
-- takes 28x28. Here the generator starts at 7x7 and two stride-2 transposed
-- convolutions give 14x14 and 28x28, so the two nets meet.
--
-- Weights are drawn from N(0, 0.02) as in the seed. BatchNorm uses the Keras
-- momentum 0.8 (PyTorch's 0.2): running = 0.8 running + 0.2 batch.
local Z = 100
local init = normal {stddev = 0.02}

local G = net "generator" {
  input {Z},
  dense {7 * 7 * 256, init = init}, relu,
  reshape {256, 7, 7},
  conv2d_transpose {128, 3, stride = 2, init = init}, batchnorm {momentum = 0.8}, relu,  -- 14x14
  conv2d_transpose {64, 3, stride = 2, init = init}, batchnorm {momentum = 0.8}, relu,   -- 28x28
  conv2d_transpose {1, 3, stride = 1, init = init}, tanh,
}

local D = net "discriminator" {
  input {1, 28, 28},
  conv2d {64, 3, stride = 2, init = init}, leaky_relu(0.2), dropout(0.3),    -- 14x14
  conv2d {128, 3, stride = 2, init = init}, leaky_relu(0.2), dropout(0.3),   -- 7x7
  flatten,
  dense {1, init = init},                  -- a logit: the loss applies the sigmoid
}

local x = data.images
local z = noise.normal {Z, name = "z"}

return model "dcgan" {
  batch = 64,
  image_range = {-1, 1},
  steps = {
    { name = "d", update = D, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(x), 1) + bce_logits(D(G(z)), 0) },
    { name = "g", update = G, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(G(z)), 1) },
  },
  sample = G,
}
