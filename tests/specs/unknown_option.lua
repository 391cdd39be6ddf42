-- expect: tests/specs/unknown_option.lua:3: adam: unknown option 'beta'
local D = net "discriminator" { input {1, 28, 28}, flatten, dense(1) }
local opt = adam {lr = 1e-3, beta = 0.5}
return model "bad" { steps = { { name = "d", update = D, optimizer = opt, loss = bce_logits(D(data.images), 1) } } }
