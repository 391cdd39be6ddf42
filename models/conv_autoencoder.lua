-- The convolutional autoencoder of the seed articles: two conv + max-pool
-- stages down to a 7x7x8 code, two strided transposed convs back up to
-- 28x28, and a sigmoid conv to one channel. Mean squared error, Adam.
local AE = net "conv_autoencoder" {
  input {1, 28, 28},
  conv2d {16, 3, padding = "same"}, relu,
  maxpool2d {2, padding = "same"},                          -- 14x14x16
  conv2d {8, 3, padding = "same"}, relu,
  maxpool2d {2, padding = "same"},                          -- 7x7x8: the code
  conv2d_transpose {8, 3, stride = 2, padding = "same"}, relu,   -- 14x14x8
  conv2d_transpose {16, 3, stride = 2, padding = "same"}, relu,  -- 28x28x16
  conv2d {1, 3, padding = "same"}, sigmoid,
}

local x = data.images

return model "conv_autoencoder" {
  batch = 64,
  steps = {
    { name = "reconstruct", update = AE, optimizer = adam {lr = 1e-3},
      loss = mse(AE(x), x) },
  },
  reconstruct = AE(x),
}
