-- The VAE of the seed articles: a dense encoder to a 20-dimensional Gaussian,
-- the reparameterization trick, and a dense decoder. Loss: reconstruction BCE
-- plus beta times the KL divergence to N(0, 1).
local LATENT = 20

local E = net "encoder" {
  input {1, 28, 28},
  flatten,
  dense(128), relu,
  heads { mean = dense(LATENT), logvar = dense(LATENT) },
}

local Dec = net "decoder" {
  input {LATENT},
  dense(128), relu,
  dense(784), sigmoid,
  reshape {1, 28, 28},
}

local x = data.images
local h = E(x)
local z = h.mean + exp(0.5 * h.logvar) * noise.normal {LATENT, name = "eps"}
local beta = 1

-- bce averages over pixels; times 784 it is the per-image sum that the seed's
-- Keras VAE uses, which gives the KL term (summed over latents) its usual weight.
return model "vae" {
  batch = 64,
  steps = {
    { name = "elbo", update = {E, Dec}, optimizer = adam {lr = 1e-3},
      loss = 784 * bce(Dec(z), x) + beta * kl_normal(h.mean, h.logvar) },
  },
  sample = Dec,
  reconstruct = Dec(E(x).mean),
}
