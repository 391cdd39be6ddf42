-- expect: tests/specs/loss_not_scalar.lua:4: step 'd': the loss has shape [B,1]; it must be a scalar (use mean or sum)
local D = net "discriminator" { input {1, 28, 28}, flatten, dense(1) }
local logits = D(data.images)
return model "bad" { steps = { { name = "d", update = D, optimizer = adam {}, loss = logits } } }
