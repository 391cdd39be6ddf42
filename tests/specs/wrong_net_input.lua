-- expect: tests/specs/wrong_net_input.lua:3: generator: input has shape [B,1,28,28]; the net takes [B,100]
local G = net "generator" { input {100}, dense(784), sigmoid, reshape {1, 28, 28} }
local fake = G(data.images)
return model "bad" { steps = { { name = "g", update = G, optimizer = adam {}, loss = mse(fake, data.images) } } }
