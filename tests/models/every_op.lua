-- Every op of the DSL in one small conditional model, for the whole-step
-- gradient and memory-plan tests (not a model to train).
local G = net "gen" { input {14}, dense(16), leaky_relu(0.1), dense(12), tanh }
local D = net "disc" { input {1, 2, 11}, flatten, dense(8), sigmoid, dense(1) }

local z = noise.normal {4, name = "z"}
local u = noise.uniform {12, lo = 0.5, hi = 1.5, name = "u"}
local y = onehot(data.labels, 10)

local g = G(concat(z, y))                          -- concat, onehot
-- exp, div, log, mul, reciprocal, sub, affine, each on a path to the parameters
local h = exp(g) / u + log(u) * g - 1 / (exp(g) + 1) - g * 0.5 + log(exp(g) + 1)
local d = D(reshape {1, 2, 11} (concat(h, y)))

return model "every_op" {
  batch = 4,
  steps = {
    { name = "a", update = D, optimizer = sgd {lr = 0.01, momentum = 0.9},
      loss = bce_logits(d, 1) + mean(relu(h)) },
    { name = "b", update = G, optimizer = rmsprop {},
      loss = mse(sigmoid(d), 0.5) * 2 + sum(h) / 10 - bce(sigmoid(d), sigmoid(d) * 0.5)
             + kl_normal(g, g * 0.5) },
  },
}
