-- The dense autoencoder of the seed articles: 784 -> 128 -> 32 -> 128 -> 784,
-- trained to reproduce its input under mean squared error.
local AE = net "autoencoder" {
  input {1, 28, 28},
  flatten,
  dense(128), relu,
  dense(32), relu,        -- the code
  dense(128), relu,
  dense(784), sigmoid,
  reshape {1, 28, 28},
}

local x = data.images

return model "autoencoder" {
  batch = 64,
  steps = {
    { name = "reconstruct", update = AE, optimizer = adam {lr = 1e-3},
      loss = mse(AE(x), x) },
  },
  reconstruct = AE(x),
}
