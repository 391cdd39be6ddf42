-- The MLP GAN of the seed articles: a dense generator and discriminator
-- trained against each other on 28x28 images with BCE on logits.
local Z = 100

local G = net "generator" {
  input {Z},
  dense(128), relu,
  dense(128), relu,
  dense(784), sigmoid,
  reshape {1, 28, 28},
}

local D = net "discriminator" {
  input {1, 28, 28},
  flatten,
  dense(128), relu,
  dense(128), relu,
  dense(1),               -- a logit: the loss applies the sigmoid
}

local x = data.images
local z = noise.normal {Z, name = "z"}

return model "mlp_gan" {
  batch = 64,
  steps = {
    { name = "d", update = D, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(x), 1) + bce_logits(D(G(z)), 0) },
    { name = "g", update = G, optimizer = adam {lr = 2e-4, beta1 = 0.5},
      loss = bce_logits(D(G(z)), 1) },
  },
  sample = G,
}
