-- The conditional GAN of the seed articles: both nets see the class.
-- The generator reads z beside a one-hot label, the discriminator the
-- flattened image beside the same one-hot label. Images are scaled to
-- [-1, 1] to match the generator's tanh.
--
-- Generated images are conditioned on the labels of the real batch they are
-- shown with, so both steps see every class as often as the data does.
local Z, CLASSES = 100, 10

local G = net "generator" {
  input {Z + CLASSES},
  dense(256), relu,
  dense(512), relu,
  dense(784), tanh,
  reshape {1, 28, 28},
}

local D = net "discriminator" {
  input {784 + CLASSES},
  dense(512), leaky_relu(0.2),
  dense(256), leaky_relu(0.2),
  dense(1),               -- a logit: the loss applies the sigmoid
}

local x = data.images
local y = onehot(data.labels, CLASSES)
local z = noise.normal {Z, name = "z"}
local fake = G(concat(z, y))

return model "cgan" {
  batch = 64,
  image_range = {-1, 1},
  steps = {
    { name = "d", update = D, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(concat(flatten(x), y)), 1) + bce_logits(D(concat(flatten(fake), y)), 0) },
    { name = "g", update = G, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(concat(flatten(fake), y)), 1) },
  },
  sample = fake,          -- one row per class in sample grids
}
